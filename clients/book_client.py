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
``since`` to replay only what it missed. Every op it sends waits for its own op budget
(:mod:`clients.pacing`), so the gateway never closes it for sending too fast; a handshake
refused for load (503/429) is retried no sooner than ``Retry-After`` (:mod:`clients.refusal`).
Nothing that arrives on the wire can raise out of the receive loop: bad frames are counted
in :attr:`BookClient.stats` and logged.
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
from clients.errors import (
    ClientClosedError,
    ClientConnectError,
    ClientError,
    NotConnectedError,
    SubscriptionRefusal,
    SubscriptionRefusedError,
)
from clients.pacing import OpPacer
from clients.refusal import HandshakeRefusal, handshake_refusal
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
            refusal_backoff=self.options.refusal_backoff,
            rand=rand,
        )
        self._books.add(pairs, clock())  # unknown pairs raise UnknownPairError here, before any I/O
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()
        self._outbox_ready = asyncio.Event()  # wakes the connection's sender
        self._pings: dict[int, asyncio.Future[float]] = {}
        self._ping_sent: dict[int, float] = {}  # ping id -> perf_counter() when it left (after pacing)
        self._not_before = [0.0] * len(urls)  # per URL: time.monotonic() before which not to connect
        self._last_refusal: HandshakeRefusal | None = None

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

    @property
    def last_refusal(self) -> HandshakeRefusal | None:
        """While not connected: the busy gateway's refusal (503/429) of the last attempt, if so."""
        return self._last_refusal

    async def start(self) -> None:
        """Connect and subscribe.

        With ``fail_fast``, a failed first attempt raises ClientConnectError, except a
        refusal for load (HTTP 503/429): that is no configuration error, so the client
        keeps trying in the background, no sooner than the gateway's ``Retry-After``.
        """
        if self._task is not None:
            return
        if self.closed:
            raise ClientClosedError("this client was closed; create a new one")
        ws: ClientConnection | None = None
        attempt = 0
        if self.options.fail_fast:
            try:
                ws = await self._open()
            except ClientConnectError as exc:
                if not self._connect_failed(exc, attempt, retrying=False):
                    raise
                attempt = 1
        self._task = asyncio.create_task(self._run(ws, attempt), name="bookcast-client")

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
        """Wait until every pair in ``pairs`` (default: all) has a verified book.

        Raises SubscriptionRefusedError as soon as the gateway's latest answer to
        subscribing one of them is an error (waiting longer would only time out).
        """
        names = None if pairs is None else list(pairs)
        for pair in names or ():
            self._books.state(pair)  # KeyError now rather than a timeout later

        def synced() -> bool:
            refused = self._books.refusals(names)
            if refused:
                raise SubscriptionRefusedError(refused)
            return self._books.all_synced(names)

        await self.wait_for(synced, timeout)

    @property
    def refused(self) -> dict[str, SubscriptionRefusal]:
        """The pairs the gateway refused to subscribe (not synced, asked again slowly), with why."""
        return self._books.refusals()

    # --- requests at runtime ---------------------------------------------------------

    async def subscribe(self, pairs: Iterable[str]) -> list[str]:
        """Follow more pairs; returns the new ones. Sent now if connected, else on reconnect.

        It does not wait for the gateway's answer: ``wait_synced(pairs)`` does, and raises
        SubscriptionRefusedError if the gateway refuses them.
        """
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
            started = self._ping_sent.pop(request_id, started)  # not counting the wait for pacing
        return answered - started

    # --- connection loop -------------------------------------------------------------

    async def _open(self) -> ClientConnection:
        """One connection attempt to the current URL (its session then subscribes every pair)."""
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
        self._last_refusal = None
        self.stats.connects += 1
        if self.stats.connects > 1:
            self.stats.reconnects += 1
        log.info("connected to %s (%d pairs)", url, len(self._books.pairs))
        return ws

    async def _run(self, ws: ClientConnection | None, attempt: int) -> None:
        """Own the connection for the client's life; a crash here closes the client loudly."""
        try:
            await self._connection_loop(ws, attempt)
        except Exception:
            log.exception("receive loop failed; the client is closed")
            self._closing.set()
            for stream in list(self._streams):
                stream.close()
            self._fail_pings(ClientClosedError("receive loop failed"))
            self._notify()

    async def _connection_loop(self, ws: ClientConnection | None, attempt: int) -> None:
        wait = False  # the very first attempt (without fail_fast) goes at once
        while True:
            if ws is None:
                delay = self.options.backoff.delay(attempt, self._rand) if wait else 0.0
                # A gateway that refused us for load is not asked again before it said.
                delay = max(delay, self._not_before[self._url_index] - time.monotonic())
                if delay > 0 and await self._sleep(delay):
                    return
                wait = True
                try:
                    ws = await self._open()
                except ClientConnectError as exc:
                    self._connect_failed(exc, attempt)
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

    def _connect_failed(self, exc: ClientConnectError, attempt: int, retrying: bool = True) -> bool:
        """Count and log a failed attempt and move to the next URL; True if refused for load.

        A refusal for load (503/429) sets when that gateway may be tried again: its
        ``Retry-After`` (or the backoff's ceiling) as a floor, jitter above it.
        """
        refusal = handshake_refusal(exc.cause)
        if refusal is None:
            self.stats.connect_failures += 1
            if retrying:
                log.warning("%s; retrying (attempt %d)", exc, attempt + 1)
        else:
            self.stats.handshake_refusals += 1
            self._last_refusal = refusal
            delay = self.options.backoff.after_refusal(attempt, refusal.retry_after, self._rand)
            self._not_before[self._url_index] = time.monotonic() + delay
            log.warning(
                "%s is busy (HTTP %d, Retry-After %s); trying it again in %.1f s",
                exc.url, refusal.status, refusal.retry_after, delay,
            )  # fmt: skip
        self._advance_url()
        self._notify()
        return refusal is not None

    async def _session(self, ws: ClientConnection) -> tuple[int | None, str]:
        """Receive until the connection ends; returns the close code and reason."""
        self._ws = ws
        self._books.begin_connection(self._clock())  # the subscribe of every pair goes first
        self._outbox_ready.set()
        self._notify()
        sender = asyncio.create_task(self._sender(ws), name="bookcast-client-sender")
        watchdog = asyncio.create_task(self._watchdog(), name="bookcast-client-watchdog")
        try:
            while True:
                frame = await ws.recv(decode=False)
                self._on_frame(frame)
                if self._books.has_ops:
                    self._outbox_ready.set()
        except ConnectionClosed:
            pass
        finally:
            watchdog.cancel()
            sender.cancel()
            self._ws = None
            self._books.connection_lost()
            self._fail_pings(NotConnectedError("connection lost"))
            self._notify()
        return ws.close_code, ws.close_reason or ""

    async def _watchdog(self) -> None:
        """Every ``resync_retry`` seconds, ask again for snapshots that never came.

        The receive loop repeats a request when the pair's next delta arrives; this timer
        covers quiet pairs, a gateway that sends nothing until it gets the snapshot right,
        and refused pairs whose retry time came. The sender paces what it queues.
        """
        period = self.options.resync_retry
        while True:
            await asyncio.sleep(period)
            self._books.request_overdue(self._clock())
            if self._books.has_ops:
                self._outbox_ready.set()

    async def _sender(self, ws: ClientConnection) -> None:
        """Send the queued ops in order, each after a token of the op budget (:mod:`clients.pacing`)."""
        opts, books = self.options, self._books
        pacer = OpPacer(opts.op_rate, opts.op_burst, time.monotonic())
        try:
            while True:
                if not books.has_ops:
                    self._outbox_ready.clear()
                    await self._outbox_ready.wait()
                    continue
                wait = pacer.wait(time.monotonic())
                if wait > 0:
                    self.stats.paced_ops += 1
                    await asyncio.sleep(wait)
                    continue
                pacer.take(time.monotonic())
                op = books.next_op(self._clock())
                if op is None:
                    continue
                if isinstance(op, Ping) and op.id in self._pings:  # still awaited by ping()
                    self._ping_sent[op.id] = time.perf_counter()
                await ws.send(encode_client_op(op))
        except ConnectionClosed:
            pass  # the receive loop sees the same close and handles it
        except Exception:
            log.exception("cannot send to the gateway; dropping the connection")
            ws.transport.abort()

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
        """Queue ``ops`` for the sender if connected; if not, the next connection's subscribe covers them."""
        if self._ws is None:
            return
        self._books.queue(ops)
        self._outbox_ready.set()

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
                    self._on_control(message, received_ns)
            except Exception as exc:
                stats.bad_frames += 1
                self._log_bad(frame, exc)
        self._notify()

    def _on_control(self, message: object, received_ns: int) -> None:
        if isinstance(message, Ack):
            self._books.on_ack(message)
            if message.recovered:
                self.stats.recoveries += 1
                log.info("recovered %s without snapshots", ", ".join(message.pairs))
        elif isinstance(message, Pong):
            future = self._pings.get(message.id)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())
        elif isinstance(message, ErrorMessage):
            self.stats.errors += 1
            if self._books.on_error(message, received_ns):
                return  # a refused subscribe: handled and logged by the books
            log.warning("gateway error %s: %s (request %r)", message.code, message.message, message.id)
            future = self._pings.get(message.id) if type(message.id) is int else None
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
