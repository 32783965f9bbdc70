"""``BookClient``: local order books kept equal to the source over one WebSocket connection.

Drop-in use from a trading program::

    async with BookClient("ws://127.0.0.1:8765/ws", ["BTC-USD", "ETH-USD"]) as client:
        await client.wait_synced(timeout=10)
        async for update in client.updates():
            book = client.book(update.pair)
            print(update.pair, update.seq, book.best_bid(), book.best_ask())

The client subscribes, keeps one verified book per pair (the rules live in
:mod:`clients.book_set`), resyncs by itself on a gap or checksum mismatch, and reconnects
with capped, jittered backoff when the connection drops, asking the gateway with
``since`` to replay only what it missed. Nothing that arrives on the wire can raise out
of the receive loop: bad frames are counted in :attr:`BookClient.stats` and logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException
from websockets.uri import parse_uri

from clients.book_set import BookSet
from clients.config import ClientOptions
from clients.errors import ClientClosedError, ClientConnectError, ClientError, NotConnectedError
from clients.stats import ClientStats
from clients.updates import BookUpdate, UpdateStream
from clients.view import BookView
from mdcore.codec import decode_server_frame, encode_client_op
from mdcore.messages import Ack, ClientOp, Delta, ErrorMessage, Ping, Pong, Snapshot, Unsubscribe

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001  # the gateway is shutting down or draining: reconnect (elsewhere if we can)
CLOSE_POLICY_VIOLATION = 1008  # we broke a limit (rate, size...): log it, back off, reconnect

UpdateCallback = Callable[[BookUpdate], object]


class BookClient:
    """Books for ``pairs`` from the gateway(s) at ``url``; use as ``async with``.

    ``url`` may be a list: the client moves to the next URL when a connection attempt
    fails or a gateway closes with 1001 ("going away"). ``on_update`` is called in the
    receive loop for every applied snapshot and delta; it must be quick and must not
    block (its exceptions are logged and counted, never fatal).
    """

    def __init__(
        self,
        url: str | Sequence[str],
        pairs: Iterable[str],
        *,
        options: ClientOptions | None = None,
        on_update: UpdateCallback | None = None,
        clock: Callable[[], int] = time.time_ns,
        rand: Callable[[], float] = random.random,
    ) -> None:
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("BookClient needs at least one URL")
        for candidate in urls:
            try:
                parse_uri(candidate)
            except InvalidURI:
                raise ValueError(f"not a ws:// or wss:// URL: {candidate!r}") from None
        self._urls = urls
        self._url_index = 0
        self.options = options or ClientOptions()
        self.stats = ClientStats()
        self._clock = clock
        self._rand = rand
        self._on_update = on_update
        self._streams: list[UpdateStream] = []
        self._books = BookSet(
            self.stats,
            self._emit,
            verify_checksums=self.options.verify_checksums,
            resync_retry_ns=int(self.options.resync_retry * 1e9),
        )
        self._books.add(pairs, clock())  # unknown pairs raise UnknownPairError here, before any I/O
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()
        self._pings: dict[int, asyncio.Future[float]] = {}

    # --- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL in use (or to be tried next)."""
        return self._urls[self._url_index]

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    async def start(self) -> None:
        """Connect and subscribe. With ``fail_fast``, a failed first attempt raises ClientConnectError."""
        if self._task is not None:
            return
        if self.closed:
            raise ClientClosedError("this client was closed; create a new one")
        ws: ClientConnection | None = None
        if self.options.fail_fast:
            try:
                ws = await self._open()
            except ClientConnectError:
                self.stats.connect_failures += 1
                self._advance_url()
                raise
        self._task = asyncio.create_task(self._run(ws), name="bookcast-client")

    async def close(self) -> None:
        """Close the connection (code 1000), stop reconnecting, end every update stream."""
        if self.closed:
            return
        self._closing.set()
        ws = self._ws
        if ws is not None:
            await ws.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise  # we are being cancelled ourselves; our task's cancellation is not
        for stream in list(self._streams):
            stream.close()
        self._fail_pings(ClientClosedError("client closed"))
        self._notify()

    async def __aenter__(self) -> BookClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- reading books and updates ---------------------------------------------------

    @property
    def pairs(self) -> tuple[str, ...]:
        return self._books.pairs

    def book(self, pair: str) -> BookView:
        """A live, read-only view of ``pair``'s book (KeyError if not subscribed)."""
        return BookView(self._books.state(pair))

    def updates(self, maxsize: int | None = None) -> UpdateStream:
        """A new stream of every update from now on; ``async for`` over it, close it when done."""
        if self.closed:
            raise ClientClosedError("this client was closed")
        stream = UpdateStream(maxsize or self.options.update_buffer, self.stats, self._streams.remove)
        self._streams.append(stream)
        return stream

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait until ``predicate()`` is true, re-checking after every frame and state change.

        Raises TimeoutError after ``timeout`` seconds, ClientClosedError if the client closes.
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                if self.closed:
                    raise ClientClosedError("client closed while waiting")
                await self._changed.wait()

    async def wait_synced(self, pairs: Iterable[str] | None = None, timeout: float | None = None) -> None:
        """Wait until every pair in ``pairs`` (default: all) has a verified book."""
        names = None if pairs is None else list(pairs)
        for pair in names or ():
            self._books.state(pair)  # KeyError now rather than a timeout later
        await self.wait_for(lambda: self._books.all_synced(names), timeout)

    # --- requests at runtime ---------------------------------------------------------

    async def subscribe(self, pairs: Iterable[str]) -> list[str]:
        """Follow more pairs; returns the new ones. Sent now if connected, else on reconnect."""
        added = self._books.add(pairs, self._clock())
        if added:
            await self._send_if_connected(self._books.subscribe_ops(self._clock(), added))
        return added

    async def unsubscribe(self, pairs: Iterable[str]) -> list[str]:
        """Stop following pairs; returns those that were followed. Their views go unsynced."""
        removed = self._books.remove(pairs)
        if removed:
            await self._send_if_connected([Unsubscribe(tuple(removed), self._books.next_id())])
        self._notify()
        return removed

    async def ping(self, timeout: float = 5.0) -> float:
        """Round trip of an app-level ``ping`` to the gateway, in seconds.

        Raises NotConnectedError if there is no connection (or it drops meanwhile),
        ClientError if the gateway answers with an error, TimeoutError after ``timeout``.
        """
        if self._ws is None:
            raise NotConnectedError("not connected")
        request_id = self._books.next_id()
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pings[request_id] = future
        started = time.perf_counter()
        try:
            await self._send_if_connected([Ping(request_id)])
            async with asyncio.timeout(timeout):
                answered = await future
        finally:
            self._pings.pop(request_id, None)
        return answered - started

    # --- connection loop -------------------------------------------------------------

    async def _open(self) -> ClientConnection:
        """One connection attempt to the current URL, subscribed to every pair."""
        url, opts = self.url, self.options
        try:
            ws = await connect(
                url,
                open_timeout=opts.open_timeout,
                close_timeout=opts.close_timeout,
                ping_interval=opts.ping_interval,
                ping_timeout=opts.ping_timeout,
                max_size=opts.max_frame_size,
                compression=None,  # small frames; deflate would cost the gateway CPU per client
                proxy=None,  # market data goes straight to the gateway
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ClientConnectError(url, exc) from exc
        try:
            for op in self._books.subscribe_ops(self._clock()):
                await ws.send(encode_client_op(op))
        except ConnectionClosed as exc:
            raise ClientConnectError(url, exc) from exc
        except BaseException:  # cancelled (client closing) between connect and subscribe
            ws.transport.abort()
            raise
        self.stats.connects += 1
        if self.stats.connects > 1:
            self.stats.reconnects += 1
        log.info("connected to %s (%d pairs)", url, len(self._books.pairs))
        return ws

    async def _run(self, ws: ClientConnection | None) -> None:
        """Own the connection for the client's life; a crash here closes the client loudly."""
        try:
            await self._connection_loop(ws)
        except Exception:
            log.exception("receive loop failed; the client is closed")
            self._closing.set()
            for stream in list(self._streams):
                stream.close()
            self._fail_pings(ClientClosedError("receive loop failed"))
            self._notify()

    async def _connection_loop(self, ws: ClientConnection | None) -> None:
        attempt = 0
        wait = False  # the very first attempt (without fail_fast) goes at once
        while True:
            if ws is None:
                if wait and await self._sleep(self.options.backoff.delay(attempt, self._rand)):
                    return
                wait = True
                try:
                    ws = await self._open()
                except ClientConnectError as exc:
                    self.stats.connect_failures += 1
                    self._advance_url()
                    self._notify()
                    log.warning("%s; retrying (attempt %d)", exc, attempt + 1)
                    attempt += 1
                    continue
            opened = time.monotonic()
            code, reason = await self._session(ws)
            ws = None
            if self.closed:
                return
            self.stats.disconnects += 1
            wait = True
            if code == CLOSE_POLICY_VIOLATION:
                log.error("gateway closed the connection for a policy violation: %s", reason or "no reason")
                attempt += 1
            elif code == CLOSE_GOING_AWAY:
                log.info("gateway going away (%s); reconnecting", reason or "no reason")
                self._advance_url()
                attempt = 0
            else:
                log.warning("connection lost (code %s %s); reconnecting", code, reason)
                attempt = 0 if time.monotonic() - opened >= self.options.stable_after else attempt + 1

    async def _session(self, ws: ClientConnection) -> tuple[int | None, str]:
        """Receive until the connection ends; returns the close code and reason."""
        self._ws = ws
        self._notify()
        watchdog = asyncio.create_task(self._watchdog(ws), name="bookcast-client-watchdog")
        try:
            while True:
                frame = await ws.recv(decode=False)
                self._on_frame(frame)
                ops = self._books.take_ops()
                if ops:
                    for op in ops:
                        await ws.send(encode_client_op(op))
        except ConnectionClosed:
            pass
        finally:
            watchdog.cancel()
            self._ws = None
            self._books.connection_lost()
            self._fail_pings(NotConnectedError("connection lost"))
            self._notify()
        return ws.close_code, ws.close_reason or ""

    async def _watchdog(self, ws: ClientConnection) -> None:
        """Every ``resync_retry`` seconds, ask again for snapshots that never came.

        The receive loop repeats a request when the pair's next delta arrives; this timer
        covers quiet pairs and a gateway that sends nothing until it gets the snapshot right.
        """
        period = self.options.resync_retry
        try:
            while True:
                await asyncio.sleep(period)
                self._books.request_overdue(self._clock())
                for op in self._books.take_ops():
                    await ws.send(encode_client_op(op))
        except ConnectionClosed:
            pass  # the receive loop sees the same close and handles it

    async def _sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the client closes first (then True)."""
        try:
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        except TimeoutError:
            return False
        return True

    def _advance_url(self) -> None:
        self._url_index = (self._url_index + 1) % len(self._urls)

    async def _send_if_connected(self, ops: Sequence[ClientOp]) -> None:
        """Send ``ops`` now if connected; if not, the next connection's subscribe covers them."""
        ws = self._ws
        if ws is None:
            return
        try:
            for op in ops:
                await ws.send(encode_client_op(op))
        except ConnectionClosed:
            log.debug("connection lost while sending; the reconnect will resubscribe")

    # --- frames ----------------------------------------------------------------------

    def _on_frame(self, frame: bytes | str) -> None:
        """Decode and apply one frame; never raises (bad input is counted and logged)."""
        received_ns = self._clock()
        stats = self.stats
        stats.frames += 1
        stats.bytes += len(frame)
        try:
            messages = decode_server_frame(frame)
        except Exception as exc:
            stats.bad_frames += 1
            self._log_bad(frame, exc)
            self._notify()
            return
        books = self._books
        for message in messages:
            stats.messages += 1
            try:
                if type(message) is Delta:
                    books.on_delta(message, received_ns)
                elif type(message) is Snapshot:
                    books.on_snapshot(message, received_ns)
                else:
                    self._on_control(message)
            except Exception as exc:
                stats.bad_frames += 1
                self._log_bad(frame, exc)
        self._notify()

    def _on_control(self, message: object) -> None:
        if isinstance(message, Ack):
            if message.recovered:
                self.stats.recoveries += 1
                log.info("recovered %s without snapshots", ", ".join(message.pairs))
        elif isinstance(message, Pong):
            future = self._pings.get(message.id)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())
        elif isinstance(message, ErrorMessage):
            self.stats.errors += 1
            log.warning("gateway error %s: %s (request %r)", message.code, message.message, message.id)
            future = self._pings.get(message.id)
            if future is not None and not future.done():
                future.set_exception(ClientError(f"gateway refused ping: {message.code}: {message.message}"))
        else:
            log.debug("ignoring unknown message %r", message)

    def _emit(self, update: BookUpdate) -> None:
        for stream in self._streams:
            stream.put(update)
        if self._on_update is not None:
            try:
                self._on_update(update)
            except Exception:
                self.stats.callback_errors += 1
                log.exception("on_update callback failed for %s seq %d", update.pair, update.seq)

    def _notify(self) -> None:
        """Wake every ``wait_for``: swap in a fresh event and set the old one."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _fail_pings(self, exc: Exception) -> None:
        for future in self._pings.values():
            if not future.done():
                future.set_exception(exc)
        self._pings.clear()

    def _log_bad(self, frame: bytes | str, exc: Exception) -> None:
        count = self.stats.bad_frames
        if count <= 10 or count % 1000 == 0:
            preview = frame[:120] if isinstance(frame, str) else frame[:120].decode("utf-8", "replace")
            log.warning("bad frame #%d ignored (%s: %s): %r", count, type(exc).__name__, exc, preview)
