"""How many frames one load-generator process can receive: ``python -m clients.load.bench``.

A "blaster" server (its own process) writes pre-framed, valid delta frames as fast as the
sockets take them, so the client side is the bottleneck. Three receivers are measured on
the same connections, each repeated, medians reported:

- ``protocol only``: websockets' sans-I/O parsing, frames counted, nothing decoded (the baseline);
- ``load generator``: the real per-connection path (:class:`~clients.load.worker.Worker`): JSON
  decode, seq continuity per pair, two latency histograms per delta, checksums on none;
- ``BookClient``: the full client library (checksums on every delta), for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.server import serve
from websockets.client import ClientProtocol
from websockets.frames import Frame
from websockets.protocol import State
from websockets.uri import parse_uri

from clients.book_client import BookClient
from clients.config import ClientOptions
from clients.load.worker import ConnSpec, Worker, WorkerPlan
from mdcore.book import ASK, BID, OrderBook
from mdcore.codec import encode_delta, encode_snapshot
from mdcore.instruments import instrument
from mdcore.messages import Delta, Snapshot
from mdcore.wire_format import book_checksum

PAIR = "BTC-USD"
CYCLE = 20_000  # deltas pre-encoded per cycle; each cycle starts with a fresh snapshot


def _frame(payload: bytes) -> bytes:
    """A server-to-client text frame (unmasked) around ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes([0x81, n]) + payload
    if n < 65536:
        return bytes([0x81, 126]) + struct.pack("!H", n) + payload
    return bytes([0x81, 127]) + struct.pack("!Q", n) + payload


def _stream(levels: int) -> tuple[bytes, list[bytes]]:
    """A snapshot and CYCLE correct deltas after it (checksums included), as framed bytes."""
    inst = instrument(PAIR)
    book = OrderBook()
    for i in range(levels):
        book.set_level(BID, 6_400_000 - 64 * (i + 1), 100_000 + i)
        book.set_level(ASK, 6_400_000 + 64 * (i + 1), 100_000 + i)

    def wire(side: str) -> list[list[str]]:
        return [[inst.format_price(p), inst.format_qty(q)] for p, q in book.top(side)]

    now = time.time_ns()
    snapshot = Snapshot(PAIR, "bench", 0, now, wire(BID), wire(ASK), book_checksum(book, inst))
    deltas = []
    for seq in range(1, CYCLE + 1):
        changes = []
        for k in range(5):  # five levels change per window
            price = 6_400_000 - 64 * (1 + (seq + k) % levels)
            qty = 100_000 + (seq * 7 + k) % 5000
            book.set_level(BID, price, qty)
            changes.append([inst.format_price(price), inst.format_qty(qty)])
        delta = Delta(PAIR, "bench", seq, now, now, changes, [], book_checksum(book, inst))
        deltas.append(_frame(encode_delta(delta)))
    return _frame(encode_snapshot(snapshot)), deltas


def _blaster(port_out: Any, levels: int, together: int) -> None:
    """Server process: per connection, after the subscribe, snapshot + deltas, forever.

    Sending starts once ``together`` connections have subscribed, so that a receiver that
    hogs its event loop cannot starve the handshakes of the others.
    """
    snapshot, deltas = _stream(levels)
    chunks = [snapshot + b"".join(deltas[i : i + 200]) if i == 0 else b"".join(deltas[i : i + 200])
              for i in range(0, len(deltas), 200)]  # fmt: skip

    subscribed: set[Any] = set()
    everyone = asyncio.Event()

    async def handler(ws: Any) -> None:
        await ws.recv()  # the subscribe
        subscribed.add(ws)
        if len(subscribed) >= together:
            everyone.set()
        try:
            await everyone.wait()
            await _send(ws)
        finally:
            subscribed.discard(ws)
            if len(subscribed) < together:
                everyone.clear()

    async def _send(ws: Any) -> None:
        transport = ws.transport
        i = 0
        try:
            while ws.state is State.OPEN and not transport.is_closing():
                transport.write(chunks[i])  # raw frames: the server side costs next to nothing
                i = (i + 1) % len(chunks)
                while transport.get_write_buffer_size() > 1 << 20 and ws.state is State.OPEN:
                    await asyncio.sleep(0.0005)
                await asyncio.sleep(0)
        except (RuntimeError, ConnectionError):
            pass  # the client went away

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
            port_out.put(server.sockets[0].getsockname()[1])
            await asyncio.Future()

    asyncio.run(main())


async def _protocol_only(url: str, connections: int, seconds: float) -> float:
    """Frames/s when only websockets parses (the baseline)."""
    loop = asyncio.get_running_loop()
    counted = [0]
    uri = parse_uri(url)

    class Counting(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.protocol = ClientProtocol(uri, max_size=None)
            self.protocol.send_request(self.protocol.connect())
            self._flush()

        def data_received(self, data: bytes) -> None:
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if type(event) is Frame:
                    counted[0] += 1
                else:
                    self.protocol.send_text(b'{"op":"subscribe","pairs":["BTC-USD"]}')
            self._flush()

        def _flush(self) -> None:
            for data in self.protocol.data_to_send():
                if data:
                    self.transport.write(data)  # type: ignore[attr-defined]

    transports = [(await loop.create_connection(Counting, uri.host, uri.port))[0] for _ in range(connections)]
    start, before = time.perf_counter(), counted[0]
    await asyncio.sleep(seconds)
    rate = (counted[0] - before) / (time.perf_counter() - start)
    for transport in transports:
        transport.abort()
    return rate


async def _worker(url: str, connections: int, seconds: float) -> float:
    """Frames/s through the load generator's own connections and checks."""
    specs = tuple(ConnSpec(i, url, (PAIR,), False) for i in range(connections))
    worker = Worker(WorkerPlan(0, specs, seconds, seconds * 2, 5.0, 100, 0.0))
    result = await worker.run(threading.Event(), lambda _: None, time.monotonic())
    counters = result["counters"]
    assert counters["gaps"] == 0 and counters["bad_frames"] == 0, counters
    return counters["frames"] / result["elapsed"]


async def _book_client(url: str, connections: int, seconds: float) -> float:
    """Frames/s through the full BookClient (every checksum verified)."""
    options = ClientOptions(ping_interval=None)
    clients = [BookClient(url, [PAIR], options=options) for _ in range(connections)]
    await asyncio.gather(*(client.start() for client in clients))
    start = time.perf_counter()
    before = sum(c.stats.frames for c in clients)
    await asyncio.sleep(seconds)
    rate = (sum(c.stats.frames for c in clients) - before) / (time.perf_counter() - start)
    assert all(c.stats.checksum_failures == 0 and c.stats.gaps == 0 for c in clients)
    await asyncio.gather(*(client.close() for client in clients))  # each drains a flooded socket
    return rate


def _run(coro: Any) -> float:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clients.load.bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--connections", type=int, default=20, help="connections of the one process (default 20)"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measurement (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats; medians are reported (default 3)")
    parser.add_argument(
        "--levels", type=int, default=25, help="levels a side in the stream's book (default 25)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    ctx = multiprocessing.get_context("spawn")
    ports: Any = ctx.Queue()
    blaster = ctx.Process(target=_blaster, args=(ports, args.levels, args.connections), daemon=True)
    blaster.start()
    try:
        url = f"ws://127.0.0.1:{ports.get(timeout=60)}/ws"
        runs: dict[str, list[float]] = {"protocol only": [], "load generator": [], "BookClient": []}
        for repeat in range(args.repeats):
            runs["protocol only"].append(_run(_protocol_only(url, args.connections, args.seconds)))
            runs["load generator"].append(_run(_worker(url, args.connections, args.seconds)))
            runs["BookClient"].append(_run(_book_client(url, args.connections, args.seconds)))
            print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    finally:
        blaster.kill()
        blaster.join()
    medians = {name: statistics.median(values) for name, values in runs.items()}
    base = medians["protocol only"]
    print(
        f"frames/s one process can receive ({args.connections} connections, {args.seconds:g} s x "
        f"{args.repeats}, medians; one pair, {args.levels} levels a side, 5 changes per delta)"
    )
    for name, value in medians.items():
        print(f"  {name:<16} {value:>12,.0f} frames/s   {value / base:5.2f} x baseline")
    if args.json:
        body = {"benchmark": "loadgen", "connections": args.connections, "seconds": args.seconds,
                "repeats": args.repeats, "frames_per_s": medians, "runs": runs}  # fmt: skip
        Path(args.json).write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
