"""Clients that stall: they subscribe to every pair, keep asking for snapshots, and never read.

A raw socket with a tiny receive buffer, from its own loopback address (127.0.0.3), so
what piles up piles up in the gateway. The gateway must stop writing to it at its
high-water mark and close it (4008) after ``slow_close_s``, while everyone else's books
flow on. Bounded: the stallers stop asking after ``limit_s`` and are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from bookcast.chaos import wire

SOURCE = "127.0.0.3"
ASK_EVERY_S = 0.1  # a subscribe of every pair (their snapshots again) 10 times a second: half the op limit


@dataclass
class Staller:
    """One stalled connection: when it was opened, and when the gateway dropped it (if it did)."""

    sock: socket.socket
    opened: float
    dropped: float | None = None
    asked: int = 0
    pending: bytes = b""  # the rest of a frame the kernel did not take yet (never cut a frame)

    def push(self, frame: bytes) -> None:
        """Send what the socket takes now, without blocking; note when the gateway is gone."""
        if not self.pending:
            self.pending = frame
            self.asked += 1
        try:
            sent = self.sock.send(self.pending)
        except BlockingIOError:
            return  # our own buffer is full too: the gateway stopped reading us
        except OSError:
            self.dropped = time.monotonic()
            return
        self.pending = self.pending[sent:]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


async def open_staller(port: int, pairs: Sequence[str]) -> Staller:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.bind((SOURCE, 0))
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, wire.handshake())
        head = b""
        async with asyncio.timeout(5):
            while b"\r\n\r\n" not in head:
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    raise ConnectionError("gateway closed the stalled client's handshake")
                head += chunk
        if wire.status_of(head) != 101:
            raise ConnectionError(f"stalled client's handshake answered {wire.status_of(head)}")
    except BaseException:
        sock.close()
        raise
    return Staller(sock, time.monotonic())


async def stall(stallers: list[Staller], pairs: Sequence[str], limit_s: float) -> None:
    """Keep every staller asking for every pair's snapshot, never reading, until the gateway
    dropped them all or ``limit_s`` passed."""
    frame = wire.text(orjson.dumps({"op": "subscribe", "pairs": list(pairs)}))
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and any(s.dropped is None for s in stallers):
        for s in stallers:
            if s.dropped is None:
                s.push(frame)
        await asyncio.sleep(ASK_EVERY_S)
