"""gateway.binance.slow: stream connections that cannot keep up are skipped, healed or closed.

Through the dialect on a real websockets server (``binance_dialect_stack``), with clients
that stop reading on sockets small enough for the server's buffer to fill.
"""

from __future__ import annotations

import asyncio
import itertools
import socket

import orjson
from websockets.asyncio.client import connect

from gateway.binance.config import BinanceConfig
from tests.unit.gateway.binance_dialect_stack import Stack, T, until

SLOW = BinanceConfig(high_water_bytes=16 << 10, low_water_bytes=4 << 10, slow_close_s=5.0)


async def _stalled(stack: Stack, path: str):
    """A client that stops reading, on sockets small enough for the server's buffer to fill."""
    before = set(stack.dialect.connections)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(stack.ws_base.split(":")[2].split("/")[0])))
    sock.setblocking(False)
    ws = await connect(f"{stack.ws_base}{path}", sock=sock, max_size=None, compression=None)  # as the gateway
    await until(lambda: len(stack.dialect.connections) == len(before) + 1)
    (conn,) = stack.dialect.connections - before
    conn.ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ws.transport.pause_reading()
    return ws, conn


async def _publish_until_stale(stack: Stack, conn, pair: str = "BTC-USD") -> None:
    for _ in range(20_000):
        if conn.stale_since is not None:
            return
        stack.hub.publish(pair)
        await asyncio.sleep(0)  # let the transport try to write
    raise AssertionError("the stalled connection never went stale")


async def test_a_connection_over_the_high_water_mark_is_skipped() -> None:
    async with (
        Stack(BinanceConfig(high_water_bytes=-1)) as stack,
        connect(f"{stack.ws_base}/ws/solusd@depth@100ms"),
    ):
        await until(lambda: stack.hub.wanted["SOL-USD"] == 1)
        stack.hub.publish("SOL-USD")
        assert stack.dialect.counters["events_skipped_lagging"] == 1
        assert stack.dialect.counters["frames_out"] == 0


async def test_a_stalled_client_is_conflated_then_healed_with_its_partial_book_and_a_visible_jump() -> None:
    async with Stack(SLOW) as stack:
        ws, conn = await _stalled(stack, "/stream?streams=btcusd@depth@100ms/btcusd@depth5")
        await _publish_until_stale(stack, conn)
        skipped = stack.dialect.counters["events_skipped_lagging"]
        for _ in range(50):  # stale: nothing more is queued for it
            stack.hub.publish("BTC-USD")
        assert stack.dialect.counters["events_skipped_lagging"] == skipped + 50
        assert conn.buffered() <= SLOW.high_water_bytes + 4096  # the mark plus one event at most
        ws.transport.resume_reading()
        frames = []

        async def read() -> None:
            async for frame in ws:
                frames.append(orjson.loads(frame))

        reader = asyncio.create_task(read())
        try:
            await until(lambda: conn.stale_since is None or stack.dialect.tick(stack.now_ms))
            assert stack.dialect.counters["slow_healed"] == 1
            stack.hub.publish("BTC-USD")
            now = stack.update_id("BTC-USD")
            await until(
                lambda: (
                    frames and frames[-1]["stream"] == "btcusd@depth@100ms" and frames[-1]["data"]["u"] == now
                )
            )
        finally:
            reader.cancel()
        diffs = [(i, f["data"]) for i, f in enumerate(frames) if f["stream"] == "btcusd@depth@100ms"]
        jumps = [(i, e) for (_, p), (i, e) in itertools.pairwise(diffs) if e["U"] != p["u"] + 1]
        assert len(jumps) == 1 and jumps[0][1]["u"] == now  # the first event after healing shows the gap
        partials = [f["data"] for f in frames[: jumps[0][0]] if f["stream"] == "btcusd@depth5"]
        assert partials[-1]["lastUpdateId"] == now - 1  # the healed client's book, sent at once
        await ws.close()


async def test_a_client_stale_too_long_is_closed_with_4008_and_forgotten() -> None:
    async with Stack(SLOW) as stack:
        ws, conn = await _stalled(stack, "/ws/btcusd@depth@100ms")
        await _publish_until_stale(stack, conn)
        stack.mono += SLOW.slow_close_s - 0.1
        stack.dialect.tick(stack.now_ms)
        assert stack.dialect.counters["closed_slow"] == 0
        stack.mono += 0.2
        stack.dialect.tick(stack.now_ms)
        assert stack.dialect.counters["closed_slow"] == 1 and conn.ws.protocol.close_sent.code == 4008
        await until(lambda: not stack.dialect.connections and not +stack.hub.wanted, timeout=T)
        assert not stack.dialect.slow.stale
        ws.transport.abort()


async def test_a_client_that_sends_but_never_reads_is_closed_at_twice_the_mark() -> None:
    cfg = BinanceConfig(high_water_bytes=16 << 10, low_water_bytes=4 << 10, msg_rate=1e6)
    async with Stack(cfg) as stack:
        ws, conn = await _stalled(stack, "/ws")
        names = [
            f"{symbol}@depth{levels}{speed}"
            for symbol in ("btcusd", "ethusd", "solusd")
            for levels in ("", "5", "10", "20")
            for speed in ("", "@100ms", "@1000ms")
        ]
        subscribe = {"method": "SUBSCRIBE", "params": names, "id": 1}  # answers of about 900 bytes
        await ws.send(orjson.dumps(subscribe).decode())
        request = orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}).decode()
        for _ in range(1000):  # well past twice the mark, if nothing stopped it
            await ws.send(request)
            await asyncio.sleep(0)  # let the server read and answer
            assert conn.buffered() <= 2 * cfg.high_water_bytes
            if stack.dialect.counters["closed_over_buffer"]:
                break
        await until(lambda: stack.dialect.counters["closed_over_buffer"] == 1)
        assert conn.ws.protocol.close_sent.code == 4008
        await until(lambda: not stack.dialect.connections, timeout=T)
        ws.transport.abort()
