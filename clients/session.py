"""One WebSocket connection of a :class:`~clients.book_client.BookClient`, from open to close.

Why apart from the client: the client decides *which* connection it has and for how long
(:mod:`clients.dialer`, its reconnect loop); a session is the traffic of one connection.
Frames in are decoded and handed to the books (:mod:`clients.book_set`), the pings and the
stats, never raising; ops out are sent in order under the op budget (:mod:`clients.pacing`);
snapshots that never came are asked for again on a timer. Everything per connection ends
with it: the books go unsynced, waiting pings fail.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from clients.book_set import BookSet
from clients.config import ClientOptions
from clients.errors import NotConnectedError
from clients.pacing import OpPacer
from clients.pings import PendingPings
from clients.stats import ClientStats
from mdcore.codec import decode_server_frame, encode_client_op
from mdcore.messages import Ack, ClientOp, Delta, ErrorMessage, Ping, Pong, Snapshot

log = logging.getLogger(__name__)


class Session:
    """The traffic of one open connection; :meth:`run` it until the connection closes."""

    def __init__(
        self,
        ws: ClientConnection,
        books: BookSet,
        pings: PendingPings,
        stats: ClientStats,
        options: ClientOptions,
        clock: Callable[[], int],
        notify: Callable[[], None],
    ) -> None:
        self.ws = ws
        self._books = books
        self._pings = pings
        self.stats = stats
        self.options = options
        self._clock = clock
        self._notify = notify  # wakes the client's waiters after anything that changes state
        self._outbox_ready = asyncio.Event()  # wakes the sender

    def queue(self, ops: Sequence[ClientOp]) -> None:
        """Send ``ops`` after what is already queued."""
        self._books.queue(ops)
        self._outbox_ready.set()

    async def run(self) -> tuple[int | None, str]:
        """Receive until the connection ends; returns the close code and reason."""
        ws, books = self.ws, self._books
        books.begin_connection(self._clock())  # the subscribe of every pair goes first
        self._outbox_ready.set()
        self._notify()
        sender = asyncio.create_task(self._sender(), name="bookcast-client-sender")
        watchdog = asyncio.create_task(self._watchdog(), name="bookcast-client-watchdog")
        try:
            while True:
                frame = await ws.recv(decode=False)
                self.on_frame(frame)
                self._notify()
                if books.has_ops:
                    self._outbox_ready.set()
        except ConnectionClosed:
            pass
        finally:
            watchdog.cancel()
            sender.cancel()
            books.connection_lost()
            self._pings.fail_all(NotConnectedError("connection lost"))
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

    async def _sender(self) -> None:
        """Send the queued ops in order, each after a token of the op budget (:mod:`clients.pacing`)."""
        ws, opts, books = self.ws, self.options, self._books
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
                if isinstance(op, Ping):
                    self._pings.sent(op.id)  # the round trip of ping() starts now
                await ws.send(encode_client_op(op))
        except ConnectionClosed:
            pass  # the receive loop sees the same close and handles it
        except Exception:
            log.exception("cannot send to the gateway; dropping the connection")
            ws.transport.abort()

    def on_frame(self, frame: bytes | str) -> None:
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

    def _on_control(self, message: object, received_ns: int) -> None:
        if isinstance(message, Ack):
            self._books.on_ack(message)
            if message.recovered:
                self.stats.recoveries += 1
                log.info("recovered %s without snapshots", ", ".join(message.pairs))
        elif isinstance(message, Pong):
            self._pings.answered(message.id)
        elif isinstance(message, ErrorMessage):
            self.stats.errors += 1
            if self._books.on_error(message, received_ns):
                return  # a refused subscribe: handled and logged by the books
            log.warning("gateway error %s: %s (request %r)", message.code, message.message, message.id)
            self._pings.refused(message.id, message.code, message.message)
        else:
            log.debug("ignoring unknown message %r", message)

    def _log_bad(self, frame: bytes | str, exc: Exception) -> None:
        count = self.stats.bad_frames
        if count <= 10 or count % 1000 == 0:
            preview = frame[:120] if isinstance(frame, str) else frame[:120].decode("utf-8", "replace")
            log.warning("bad frame #%d ignored (%s: %s): %r", count, type(exc).__name__, exc, preview)
