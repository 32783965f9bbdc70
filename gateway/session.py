"""One client connection: its subscriptions and how frames reach it without blocking anyone.

Every write is synchronous (``websockets.broadcast`` to one or many connections), so the
order in which the hub writes is the order the client receives, and nothing awaits a
client. A client whose write buffer passes the high-water mark stops receiving deltas; once
it drains below the low-water mark it gets a fresh snapshot of every pair it missed.
"""

from __future__ import annotations

from websockets.asyncio.server import ServerConnection, broadcast

from gateway.config import GatewayConfig


class ClientSession:
    __slots__ = ("cfg", "conn", "lagging", "missed", "pairs", "peer")

    def __init__(self, conn: ServerConnection, cfg: GatewayConfig) -> None:
        self.conn = conn
        self.cfg = cfg
        self.pairs: set[str] = set()
        self.lagging = False
        self.missed: set[str] = set()  # pairs whose deltas were skipped while lagging
        self.peer = str(conn.remote_address[0]) if conn.remote_address else "?"

    def send(self, data: bytes) -> None:
        """Queue one text frame (already-encoded UTF-8 JSON) without awaiting the client."""
        broadcast((self.conn,), data, text=True)

    def buffered_bytes(self) -> int:
        transport = self.conn.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def admits_delta(self, pair: str) -> bool:
        """False while lagging (the pair is remembered and later healed by a snapshot)."""
        if self.lagging:
            self.missed.add(pair)
            return False
        if self.buffered_bytes() > self.cfg.high_water_bytes:
            self.lagging = True
            self.missed.add(pair)
            return False
        return True

    def recovered(self) -> bool:
        """True once a lagging client has drained enough to be healed."""
        return self.lagging and self.buffered_bytes() <= self.cfg.low_water_bytes
