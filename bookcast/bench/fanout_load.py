"""The fan-out benchmark's load side: lean WebSocket receivers, many per process.

A receiver does the client handshake, sends one ``subscribe``, answers pings, and for
every text frame counts the frame, its bytes and the deltas and snapshots in it; while
measuring, every 4th connection also reads the first ``"ts"`` (window close) of each frame
and every 16th every ``"xts"`` (exchange time), for latency. No JSON parsing and no
per-message objects: the load side must cost less per frame than the server it measures.
Latencies are kept raw while measuring and put into HdrHistograms afterwards, off the clock.

A worker process is driven over a ``multiprocessing`` pipe (:func:`worker_main`).
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import orjson
from hdrh.histogram import HdrHistogram

HIST_MAX_US = 120_000_000  # latencies up to two minutes, in µs
TS_SAMPLE_EVERY = 4  # every 4th connection records window close -> receipt per frame …
XTS_SAMPLE_EVERY = 16  # … every 16th also exchange -> receipt per delta (spread over the write order)


@dataclass
class LoadStats:
    """Counters of one worker process (all its connections)."""

    frames: int = 0
    bytes: int = 0
    deltas: int = 0
    snapshots: int = 0
    closed: int = 0
    close_codes: dict[int, int] = field(default_factory=dict)
    measuring: bool = False
    window_us: array = field(default_factory=lambda: array("q"))
    exchange_us: array = field(default_factory=lambda: array("q"))

    def take(self) -> dict[str, object]:
        out = {
            "frames": self.frames, "bytes": self.bytes, "deltas": self.deltas,
            "snapshots": self.snapshots, "closed": self.closed, "close_codes": dict(self.close_codes),
        }  # fmt: skip
        self.frames = self.bytes = self.deltas = self.snapshots = 0
        return out


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    full = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(full, "big")).to_bytes(n, "big")


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (a client must mask; the key need not be secret here)."""
    key = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    else:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    return head + key + _mask(payload, key)


class Receiver(asyncio.Protocol):
    """One lean WebSocket client connection."""

    __slots__ = ("_buf", "_ready", "_request", "_sample", "_stats", "_subscribe", "_transport", "open")

    def __init__(
        self, stats: LoadStats, request: bytes, subscribe: bytes, ready: asyncio.Future, sample: int
    ) -> None:
        self._stats = stats
        self._request = request
        self._subscribe = subscribe
        self._ready = ready
        self._sample = sample  # 0: count only, 1: + window latency, 2: + exchange latency
        self._buf = b""
        self._transport: asyncio.Transport | None = None
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        transport.write(self._request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self._stats.closed += 1
        if not self._ready.done():
            self._ready.set_exception(ConnectionError(f"closed during the handshake: {exc}"))

    def data_received(self, data: bytes) -> None:
        # Fast path: one whole text frame per read, by far the common case.
        if self.open and not self._buf and len(data) > 4 and data[0] == 0x81:
            size = data[1]
            if size == 126:
                size, head = (data[2] << 8) | data[3], 4
            elif size < 126:
                head = 2
            else:
                size, head = -1, 0
            if head + size == len(data):
                stats = self._stats
                stats.frames += 1
                stats.bytes += size
                deltas = data.count(b'"type":"delta"', head)
                if deltas:
                    stats.deltas += deltas
                    if self._sample and stats.measuring:
                        self._latency(data, head, len(data))
                else:
                    stats.snapshots += data.count(b'"type":"snapshot"', head)
                    if not self._ready.done():
                        self._ready.set_result(None)
                return
        self._frames(data)

    def _frames(self, data: bytes) -> None:
        if not self.open:
            data = self._handshake(data)
            if not data:
                return
        if self._buf:
            data = self._buf + data
            self._buf = b""
        stats = self._stats
        pos, end = 0, len(data)
        while end - pos >= 2:
            size = data[pos + 1] & 0x7F
            head = 2
            if size == 126:
                if end - pos < 4:
                    break
                size = int.from_bytes(data[pos + 2 : pos + 4], "big")
                head = 4
            elif size == 127:
                if end - pos < 10:
                    break
                size = int.from_bytes(data[pos + 2 : pos + 10], "big")
                head = 10
            stop = pos + head + size
            if stop > end:
                break
            opcode = data[pos] & 0x0F
            start = pos + head
            if opcode == 1:
                stats.frames += 1
                stats.bytes += size
                deltas = data.count(b'"type":"delta"', start, stop)
                if deltas:
                    stats.deltas += deltas
                    if self._sample and stats.measuring:
                        self._latency(data, start, stop)
                else:
                    stats.snapshots += data.count(b'"type":"snapshot"', start, stop)
                if not self._ready.done():
                    self._ready.set_result(None)
            elif opcode == 9:  # ping -> pong with the same payload
                self._transport.write(client_frame(0xA, data[start:stop]))  # type: ignore[union-attr]
            elif opcode == 8:
                code = int.from_bytes(data[start : start + 2], "big") if size >= 2 else 1005
                stats.close_codes[code] = stats.close_codes.get(code, 0) + 1
            pos = stop
        if pos < end:
            self._buf = data[pos:]

    def _latency(self, data: bytes, start: int, stop: int) -> None:
        now_us = time.time_ns() // 1000
        i = data.find(b'"ts":', start, stop)
        if i >= 0:
            j = data.find(b",", i, stop)
            self._stats.window_us.append(now_us - int(data[i + 5 : j]) // 1000)
        if self._sample == 2:
            out = self._stats.exchange_us
            i = data.find(b'"xts":', start, stop)
            while i >= 0:
                j = data.find(b",", i, stop)
                out.append(now_us - int(data[i + 6 : j]) // 1000)
                i = data.find(b'"xts":', j, stop)

    def _handshake(self, data: bytes) -> bytes:
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return b""
        head, rest = self._buf[:end], self._buf[end + 4 :]
        self._buf = b""
        if not head.startswith(b"HTTP/1.1 101"):
            if not self._ready.done():
                self._ready.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace")))
            self._transport.close()  # type: ignore[union-attr]
            return b""
        self.open = True
        self._transport.write(self._subscribe)  # type: ignore[union-attr]
        return rest

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def handshake_request(host: str, port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def _connect_all(
    stats: LoadStats, host: str, port: int, path: str, count: int, pairs: list[str], first_index: int
) -> tuple[list[Receiver], int]:
    loop = asyncio.get_running_loop()
    subscribe = client_frame(0x1, orjson.dumps({"op": "subscribe", "pairs": pairs, "id": 1}))
    receivers: list[Receiver] = []
    failed = 0
    gate = asyncio.Semaphore(64)  # handshakes in flight: the server accepts in bursts, not all at once

    async def one(index: int) -> None:
        nonlocal failed
        async with gate:
            ready: asyncio.Future[None] = loop.create_future()
            sample = 2 if index % XTS_SAMPLE_EVERY == 0 else int(index % TS_SAMPLE_EVERY == 0)
            try:
                _, proto = await loop.create_connection(
                    lambda: Receiver(stats, handshake_request(host, port, path), subscribe, ready, sample),
                    host, port,
                )  # fmt: skip
                receivers.append(proto)
                await asyncio.wait_for(ready, 60)
            except (OSError, TimeoutError, ConnectionError):
                failed += 1

    await asyncio.gather(*(one(first_index + i) for i in range(count)))
    return receivers, failed


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _histogram(values: array) -> str:
    hist = HdrHistogram(1, HIST_MAX_US, 3)
    for value in values:
        hist.record_value(min(max(value, 1), HIST_MAX_US))
    return hist.encode().decode()


async def _serve(pipe: Connection) -> None:
    """Obey the orchestrator: connect, mark, report, stop."""
    stats = LoadStats()
    receivers: list[Receiver] = []
    loop = asyncio.get_running_loop()
    while True:
        command, args = await loop.run_in_executor(None, pipe.recv)
        if command == "connect":
            host, port, path, count, pairs, first = args
            new, failed = await _connect_all(stats, host, port, path, count, pairs, first)
            receivers += new
            pipe.send({"connected": len(new) - failed, "failed": failed})
        elif command == "measure":
            stats.measuring = bool(args)
            stats.window_us, stats.exchange_us = array("q"), array("q")
            pipe.send({**stats.take(), "cpu_s": _cpu_s(), "at": time.monotonic()})
        elif command == "mark":
            stats.measuring = False
            pipe.send({**stats.take(), "cpu_s": _cpu_s(), "at": time.monotonic()})
        elif command == "histograms":
            pipe.send({"window": _histogram(stats.window_us), "exchange": _histogram(stats.exchange_us)})
        elif command == "stop":
            for receiver in receivers:
                receiver.abort()
            pipe.send({"stopped": len(receivers)})
            return


def worker_main(pipe: Connection) -> None:
    """Entry point of a load process (``multiprocessing``, spawn)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    uvloop.run(_serve(pipe))
