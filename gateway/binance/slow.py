"""Binance stream connections that cannot keep up: the native slow-client policy, in Binance's terms.

Events are written without waiting for anyone (``broadcast``), so a client that stops
reading would otherwise hold its connection, its admission slot and an ever larger write
buffer for as long as its TCP peer lives (the keepalive ping cannot help: it waits in
``drain()`` behind the full buffer). So, as for native clients (``gateway.slow``):

- a connection whose unsent bytes are above the high-water mark is *stale*: it gets no
  events (they are skipped, never queued);
- when it drains below the low-water mark it is healed: events flow again, and each partial
  book stream (``@depth5`` …) gets the current book at once. A diff stream has no snapshot
  message in Binance's protocol: the next event's ``U`` is not the previous ``u + 1``, and
  the client refetches ``/api/v3/depth``, as Binance's procedure says;
- a connection stale for ``slow_close_s`` is closed with 4008, without waiting for it.

Unsent bytes per connection are thereby bounded by ``2 × high_water`` (plus one event):
events stop at the mark, replies to the client's own requests may go on to twice the mark,
and a connection found above twice the mark (replies, or pongs to a ping flood) is closed
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Iterable

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.protocol import OPEN

from gateway.binance.session import StreamSession
from gateway.binance.streams import StreamSpec

CLOSE_TOO_SLOW = 4008  # the native protocol's code: "too slow: could not keep up"
CLOSE_GRACE_S = 1.0  # after the close frame, how long a client gets to read it before the TCP drop


class StreamConn:
    """One Binance stream connection: the socket, its pure session, its streams, its stale mark."""

    __slots__ = ("routed", "session", "stale_since", "ws")

    def __init__(self, ws: ServerConnection, session: StreamSession) -> None:
        self.ws = ws
        self.session = session
        self.routed: dict[str, StreamSpec] = {}
        self.stale_since: float | None = None  # monotonic time it went stale; None while it keeps up

    def buffered(self) -> int:
        transport = self.ws.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def close_now(self, code: int, reason: str, grace_s: float = CLOSE_GRACE_S) -> None:
        """Send a close frame now and drop the TCP connection ``grace_s`` later, whatever happens.

        ``ServerConnection.close()`` would first wait in ``drain()`` for a client that may never
        read again; this never waits.
        """
        ws = self.ws
        if ws.protocol.state is OPEN:
            with contextlib.suppress(Exception):  # the transport may be gone: aborting is the goal anyway
                ws.protocol.send_close(code, reason)
                ws.send_data()
        transport = ws.transport
        if transport is not None and not transport.is_closing():
            asyncio.get_running_loop().call_later(grace_s, transport.abort)


class SlowClients:
    """Stale marks, healing and the close deadline of every Binance stream connection."""

    def __init__(
        self,
        high_water: int,
        low_water: int,
        close_after_s: float,
        monotonic: Callable[[], float],
        counters: Counter[str],
    ) -> None:
        self.high_water = high_water
        self.low_water = low_water
        self.close_after_s = close_after_s
        self._monotonic = monotonic
        self._counters = counters
        self.stale: dict[StreamConn, None] = {}

    def takes_events(self, conn: StreamConn) -> bool:
        """True if the next event may be written to ``conn``; else it is (or has just gone) stale."""
        if conn.stale_since is not None:
            return False
        if conn.buffered() <= self.high_water:
            return True
        conn.stale_since = self._monotonic()
        self.stale[conn] = None
        self._counters["slow_paused"] += 1
        return False

    def reply(self, conn: StreamConn, payload: bytes) -> None:
        """Answer the client's own request, unless that would pass twice the mark: then close it."""
        if conn.ws.protocol.state is not OPEN:  # closing already: nothing more goes out
            return
        if conn.buffered() + len(payload) > 2 * self.high_water:
            self._close(conn, "closed_over_buffer")
            return
        broadcast((conn.ws,), payload, text=True)

    def sweep(self, conns: Iterable[StreamConn] = ()) -> list[StreamConn]:
        """Heal the stale connections that drained, close those stale too long, and of ``conns``
        those far over the mark. Returns the healed ones (the dialect sends them their partial books).
        """
        healed = []
        deadline = self._monotonic() - self.close_after_s
        for conn in list(self.stale):
            if conn.buffered() <= self.low_water:
                self.forget(conn)
                self._counters["slow_healed"] += 1
                healed.append(conn)
            elif conn.stale_since is not None and conn.stale_since <= deadline:
                self._close(conn, "closed_slow")
        for conn in conns:  # whatever filled it: replies, or pongs to a ping flood
            if conn.ws.protocol.state is OPEN and conn.buffered() > 2 * self.high_water:
                self._close(conn, "closed_over_buffer")
        return healed

    def forget(self, conn: StreamConn) -> None:
        conn.stale_since = None
        self.stale.pop(conn, None)

    def _close(self, conn: StreamConn, counter: str) -> None:
        self.forget(conn)
        self._counters[counter] += 1
        conn.close_now(CLOSE_TOO_SLOW, "too slow: could not keep up")
