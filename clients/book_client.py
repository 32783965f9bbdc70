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

This module is the public API and the reconnect loop; which gateway to try and when is
:mod:`clients.dialer`, the traffic of one connection :mod:`clients.session`, pings awaiting
their pong :mod:`clients.pings`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence

from websockets.asyncio.client import ClientConnection

from clients.book_set import BookSet
from clients.config import ClientOptions
from clients.dialer import GatewayDialer
from clients.errors import (
    ClientClosedError,
    ClientConnectError,
    NotConnectedError,
    SubscriptionRefusal,
    SubscriptionRefusedError,
)
from clients.pings import PendingPings
from clients.refusal import HandshakeRefusal
from clients.session import Session
from clients.stats import ClientStats
from clients.updates import BookUpdate, UpdateStream
from clients.view import BookView
from mdcore.messages import ClientOp, Ping, Unsubscribe

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
        self.options = options or ClientOptions()
        self.stats = ClientStats()
        self._dialer = GatewayDialer(
            [url] if isinstance(url, str) else list(url), self.options, self.stats, rand
        )
        self._clock = clock
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
        self._session: Session | None = None  # the open connection's traffic
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()
        self._pings = PendingPings()

    # --- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL in use (or to be tried next)."""
        return self._dialer.url

    @property
    def connected(self) -> bool:
        return self._session is not None

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    @property
    def last_refusal(self) -> HandshakeRefusal | None:
        """While not connected: the busy gateway's refusal (503/429) of the last attempt, if so."""
        return self._dialer.last_refusal

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
        session = self._session
        if session is not None:
            await session.ws.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise  # we are being cancelled ourselves; our task's cancellation is not
        for stream in list(self._streams):
            stream.close()
        self._pings.fail_all(ClientClosedError("client closed"))
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
        if self._session is None:
            raise NotConnectedError("not connected")
        request_id = self._books.next_id()
        future = self._pings.expect(request_id)
        started = time.perf_counter()
        try:
            await self._send_if_connected([Ping(request_id)])
            async with asyncio.timeout(timeout):
                answered = await future
        finally:
            started = self._pings.forget(request_id, started)  # not counting the wait for pacing
        return answered - started

    # --- connection loop -------------------------------------------------------------

    async def _open(self) -> ClientConnection:
        """One connection attempt to the current URL (its session then subscribes every pair)."""
        return await self._dialer.open(len(self._books.pairs))

    async def _run(self, ws: ClientConnection | None, attempt: int) -> None:
        """Own the connection for the client's life; a crash here closes the client loudly."""
        try:
            await self._connection_loop(ws, attempt)
        except Exception:
            log.exception("receive loop failed; the client is closed")
            self._closing.set()
            for stream in list(self._streams):
                stream.close()
            self._pings.fail_all(ClientClosedError("receive loop failed"))
            self._notify()

    async def _connection_loop(self, ws: ClientConnection | None, attempt: int) -> None:
        wait = False  # the very first attempt (without fail_fast) goes at once
        while True:
            if ws is None:
                delay = self._dialer.delay(attempt, back_off=wait)
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
            code, reason = await self._run_session(ws)
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
                self._dialer.advance()
                attempt = 0
            else:
                log.warning("connection lost (code %s %s); reconnecting", code, reason)
                attempt = 0 if time.monotonic() - opened >= self.options.stable_after else attempt + 1

    def _connect_failed(self, exc: ClientConnectError, attempt: int, retrying: bool = True) -> bool:
        """Count and log a failed attempt, move to the next URL; True if refused for load (503/429)."""
        refused = self._dialer.failed(exc, attempt, retrying)
        self._notify()
        return refused

    async def _run_session(self, ws: ClientConnection) -> tuple[int | None, str]:
        """Run the connection's traffic (:class:`Session`) until it ends; its close code and reason."""
        session = Session(ws, self._books, self._pings, self.stats, self.options, self._clock, self._notify)
        self._session = session
        try:
            return await session.run()
        finally:
            self._session = None

    async def _sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the client closes first (then True)."""
        try:
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        except TimeoutError:
            return False
        return True

    async def _send_if_connected(self, ops: Sequence[ClientOp]) -> None:
        """Queue ``ops`` for the sender if connected; if not, the next connection's subscribe covers them."""
        if self._session is not None:
            self._session.queue(ops)

    # --- callbacks of the books and the session ---------------------------------------

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
