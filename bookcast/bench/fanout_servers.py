"""The fan-out benchmark's two reference servers, each run as its own process.

- ``bare``: a plain ``websockets`` server with no bookcast logic. Every window it broadcasts
  one prepared frame — the same shape and size as the gateway's packed frame (one delta per
  pair) with the current time patched in — to every client with ``websockets.broadcast``.
  The only addition is skipping a client with more than 1 MiB unsent, so that an overloaded
  run cannot eat the machine's memory.
- ``naive``: the design the gateway replaces: one frame per pair-delta, read from Redis
  Pub/Sub with redis-py, written with ``await send`` to one client after the other.

``python -m bookcast.bench.fanout_servers bare|naive --port P …``. ``bare`` starts
broadcasting on SIGUSR1 (so idle memory can be measured first) and both stop on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import signal
import time

import orjson
import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from bookcast.bench.fanout_publisher import SyntheticPair
from mdcore.redis_layout import RedisLayout

BUFFER_CAP = 1 << 20
TS_MARK = b"1111111111111111111"  # 19 digits, like any ns timestamp today
XTS_MARK = b"2222222222222222222"


def prepared_windows(pairs: list[str], count: int = 32, events: int = 5) -> list[bytes]:
    """``count`` packed frames of real deltas (one per pair) with placeholders for the times."""
    import random

    rng = random.Random(1)
    streams = [SyntheticPair(pair, random.Random(rng.random()), "bench-epoch") for pair in pairs]
    frames = []
    for _ in range(count):
        deltas = []
        for stream in streams:
            closed = None
            while closed is None:
                for i in range(events):
                    stream.event(i)
                closed = stream.close(int(TS_MARK), 1_000_000)
            delta = orjson.loads(closed[0])
            delta["xts"] = int(XTS_MARK)
            deltas.append(orjson.dumps(delta))
        frames.append(b"[" + b",".join(deltas) + b"]")
    return frames


async def _serve_until_stopped(handler: object, port: int, ticker: object | None = None) -> None:
    stop = asyncio.Event()
    go = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, go.set)
    async with serve(
        handler,  # type: ignore[arg-type]
        "127.0.0.1", port, compression=None, max_size=4096, backlog=2048, close_timeout=1,
    ):  # fmt: skip
        task = asyncio.create_task(ticker(go)) if ticker is not None else None  # type: ignore[operator]
        await stop.wait()
        if task is not None:
            task.cancel()


async def run_bare(port: int, pairs: list[str], window_ms: float, events: int) -> None:
    clients: set[ServerConnection] = set()
    ack = orjson.dumps({"type": "subscribed", "pairs": pairs, "id": 1})

    async def handler(ws: ServerConnection) -> None:
        try:
            async for _ in ws:
                if ws not in clients:
                    clients.add(ws)
                    await ws.send(ack, text=True)
        except ConnectionClosed:
            pass
        finally:
            clients.discard(ws)

    templates = prepared_windows(pairs, events=events)

    async def ticker(go: asyncio.Event) -> None:
        await go.wait()
        period = window_ms / 1000
        next_at = time.monotonic()
        i = 0
        while True:
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)  # overloaded: keep going, but let reads and writes happen
                next_at = time.monotonic()
            now = str(time.time_ns()).encode()
            frame = templates[i % len(templates)].replace(TS_MARK, now).replace(XTS_MARK, now)
            i += 1
            receivers = [c for c in clients if c.transport.get_write_buffer_size() < BUFFER_CAP]
            broadcast(receivers, frame, text=True)

    await _serve_until_stopped(handler, port, ticker)


async def run_naive(port: int, pairs: list[str], redis_url: str, prefix: str) -> None:
    layout = RedisLayout(prefix)
    by_pair: dict[str, list[ServerConnection]] = {pair: [] for pair in pairs}
    ack = orjson.dumps({"type": "subscribed", "pairs": pairs, "id": 1})

    async def handler(ws: ServerConnection) -> None:
        subscribed = False
        try:
            async for _ in ws:
                if not subscribed:
                    subscribed = True
                    for pair in pairs:
                        by_pair[pair].append(ws)
                    await ws.send(ack, text=True)
        except ConnectionClosed:
            pass
        finally:
            for pair in pairs:
                if ws in by_pair[pair]:
                    by_pair[pair].remove(ws)

    async def relay(go: asyncio.Event) -> None:
        client = aioredis.Redis.from_url(redis_url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pair_of = {layout.delta_channel(p).encode(): p for p in pairs}
        await pubsub.ssubscribe(*pair_of)
        async for message in pubsub.listen():
            if message["type"] != "smessage":
                continue
            pair = pair_of[message["channel"]]
            for ws in list(by_pair.get(pair, ())):
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(message["data"], text=True)

    await _serve_until_stopped(handler, port, relay)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bookcast.bench.fanout_servers")
    parser.add_argument("kind", choices=("bare", "naive"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pairs", required=True)
    parser.add_argument("--window-ms", type=float, default=100.0)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--redis-url")
    parser.add_argument("--prefix")
    args = parser.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    pairs = args.pairs.split(",")
    if args.kind == "bare":
        uvloop.run(run_bare(args.port, pairs, args.window_ms, args.events))
    else:
        uvloop.run(run_naive(args.port, pairs, args.redis_url, args.prefix))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
