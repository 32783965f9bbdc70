"""A gateway process against real Redis, and raw protocol probes that check every book message.

``start_gateway`` starts one gateway tier (one worker) on a Redis prefix that a synthetic
md_service fills; ``http_get`` and ``counters`` read its HTTP endpoints. ``Probe`` is a raw
WebSocket client that verifies seq, epoch and checksum of every message it gets;
``stalled_probe`` is one on a tiny receive buffer, so that it can stop reading for real, and
``latencies_after`` measures a probe's deltas.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import time

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bookcast.processes import TierProcess
from mdcore.codec import decode_server_frame
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, Snapshot
from tests.integration.stack_helpers import wait_until_async

PAIRS = ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD", "DOGE-USD", "LTC-USD", "DOT-USD")
T = 20.0  # bound of every wait (a probe's, an HTTP request's)


def gateway_env(redis_url: str, prefix: str, **settings: str) -> dict[str, str]:
    env = {"REDIS_URL": redis_url, "BOOKCAST_REDIS_PREFIX": prefix, "BOOKCAST_PAIRS": ",".join(PAIRS)}
    env["BOOKCAST_GATEWAY_METRICS_PORT"] = "0"  # these tests read /health; no exporter port to collide on
    env.update({f"BOOKCAST_GATEWAY_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def start_gateway(redis_url: str, prefix: str, **settings: str) -> TierProcess:
    env = gateway_env(redis_url, prefix, **settings)
    return TierProcess("gateway", "gateway", args=["--workers", "1"], env=env, listens=True).start()


def http_get(gateway: TierProcess, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=T)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def counters(gateway: TierProcess) -> dict[str, int]:
    return http_get(gateway, "/health")[1]["counters"]


class Probe:
    """A raw protocol client that verifies every book message it gets (seq, epoch, checksum)."""

    def __init__(self, ws: ClientConnection, books: dict[str, LocalBook] | None = None) -> None:
        self.ws = ws
        self.books: dict[str, LocalBook] = dict(books or {})  # carried over from a previous connection
        self.frames = 0
        self.messages: list[object] = []
        self.received_ns: list[int] = []  # receipt time of each message (its frame's)
        self.kinds: list[tuple[str, str, int]] = []  # (kind, pair, seq) of book messages in order
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, books: dict[str, LocalBook] | None = None, **kwargs: object) -> Probe:
        return cls(await connect(url, max_size=None, compression=None, proxy=None, **kwargs), books)

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._receive()

    async def _receive(self) -> None:
        async for frame in self.ws:
            self.frames += 1
            now = time.time_ns()
            for message in decode_server_frame(frame):
                self.messages.append(message)
                self.received_ns.append(now)
                if isinstance(message, Snapshot):
                    book = self.books.setdefault(message.pair, LocalBook(message.pair))
                    book.load_snapshot(message)
                    self.kinds.append(("snapshot", message.pair, message.seq))
                elif isinstance(message, Delta):
                    self.kinds.append(("delta", message.pair, message.seq))
                    book = self.books.get(message.pair)
                    assert book is not None and book.synced, f"delta before snapshot: {message.pair}"
                    book.apply_delta(message)  # raises on a gap or a bad checksum: the test fails

    async def send(self, **op: object) -> None:
        await self.ws.send(orjson.dumps(op).decode())

    def seq(self, pair: str) -> int:
        book = self.books.get(pair)
        return book.seq if book is not None and book.synced else -1

    async def wait_seq(self, pair: str, seq: int) -> None:
        await wait_until_async(lambda: self._alive() and self.seq(pair) >= seq, T, f"{pair} at seq {seq}")

    def _alive(self) -> bool:
        if self._task.done():
            self._task.result()  # re-raise what broke the reader (a gap, a checksum)
        return True

    def of_type(self, kind: type) -> list:
        return [m for m in self.messages if isinstance(m, kind)]

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._task, return_exceptions=True)


def latencies_after(probe: Probe, since_ns: int) -> list[float]:
    """Window close -> receipt, in ms, of every delta received after ``since_ns``."""
    return [
        (at - m.ts) / 1e6
        for m, at in zip(probe.messages, probe.received_ns, strict=True)
        if isinstance(m, Delta) and at > since_ns
    ]


async def stalled_probe(url: str) -> Probe:
    """A real client on a socket with a tiny receive buffer, so that it can stop reading for real."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(url.split(":")[2].split("/")[0])))
    sock.setblocking(False)
    return Probe(await connect(url, sock=sock, max_size=None, compression=None, proxy=None))
