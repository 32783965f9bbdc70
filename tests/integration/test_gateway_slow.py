"""Slow clients cost only themselves: stale, then healed by snapshots, or closed; never a silent gap.

A synthetic md_service publishes 8 busy pairs every 10 ms. One client stops reading (its
socket's receive window closes); the others' latency is measured while it is stuck. The
stuck client is marked stale, and when it reads again it gets fresh snapshots and then
contiguous deltas (the probe checks every seq and checksum). A client that never reads again
is closed with 4008; one that never answers protocol pings is closed by the heartbeat.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time

import pytest
from websockets.asyncio.client import connect

from bookcast.bench.fanout_publisher import SyntheticPublisher
from mdcore.messages import Snapshot
from tests.integration.gateway_helpers import (
    PAIRS,
    Probe,
    counters,
    latencies_after,
    stalled_probe,
    start_gateway,
)
from tests.integration.stack_helpers import unique, wait_until_async

pytestmark = pytest.mark.integration

T = 30.0
SLOW = {
    "high_water": str(64 * 1024),
    "low_water": str(16 * 1024),
    "send_buffer": str(16 * 1024),  # small kernel buffers: a stuck client shows up in milliseconds
    "slow_close_s": "2",
}


async def test_a_stuck_client_delays_nobody_and_later_gets_snapshots_never_a_gap(infra) -> None:
    prefix = unique("gwslow")
    publisher = SyntheticPublisher(infra.redis_url, prefix, PAIRS, seed=11)
    publisher.window()
    gateway = start_gateway(infra.redis_url, prefix, **SLOW)
    stop = asyncio.Event()

    async def publish() -> None:
        while not stop.is_set():
            publisher.window(events_per_pair=25)  # ~10 KB a window: buffers fill fast
            await asyncio.sleep(0.01)

    try:
        fast = [await Probe.open(gateway.ws_url) for _ in range(2)]
        stuck, doomed = await stalled_probe(gateway.ws_url), await stalled_probe(gateway.ws_url)
        for probe in (*fast, stuck, doomed):
            await probe.send(op="subscribe", pairs=list(PAIRS), id=1)
        for probe in (*fast, stuck, doomed):
            for pair in PAIRS:
                await probe.wait_seq(pair, publisher.pairs[pair].seq)
        task = asyncio.create_task(publish())
        await asyncio.sleep(0.5)
        snapshots_before = len(stuck.of_type(Snapshot))
        stuck.ws.transport.pause_reading()
        doomed.ws.transport.pause_reading()
        stalled_at, stalled_ns = time.monotonic(), time.time_ns()
        await wait_until_async(lambda: counters(gateway).get("slow_paused", 0) >= 2, T, "both to go stale")
        noticed_s = time.monotonic() - stalled_at
        await asyncio.sleep(1.0)  # the others keep streaming while two clients are stuck
        during = latencies_after(fast[0], stalled_ns) + latencies_after(fast[1], stalled_ns)
        assert len(during) > 8 * 50, "the other clients stopped receiving"
        # How much the others were delayed is a figure, not a pass/fail here (the benchmarks
        # judge latency: bench fanout --saturation-clients, bench realistic); it is printed.
        p50, p99 = statistics.median(during), statistics.quantiles(during, n=100)[98]
        print(f"stale after {noticed_s * 1000:.0f} ms; the others meanwhile: p50 {p50:.1f} p99 {p99:.1f} ms")

        stuck.ws.transport.resume_reading()  # drains, then is healed with snapshots
        stop.set()
        await task
        for pair in PAIRS:
            await stuck.wait_seq(pair, publisher.pairs[pair].seq)
        assert len(stuck.of_type(Snapshot)) > snapshots_before, "healed without a snapshot: a silent gap"
        for probe in (*fast, stuck):
            for pair in PAIRS:
                assert probe.books[pair].book == publisher.pairs[pair].book
        assert all(len(p.of_type(Snapshot)) == 8 for p in fast), "the fast clients were disturbed"

        # the one that never reads again is closed (4008) after slow_close_s
        await wait_until_async(lambda: counters(gateway).get("closed_slow", 0) >= 1, T, "the slow close")
        c = counters(gateway)
        assert c["slow_conflations"] >= 1 and c["slow_conflation_snapshots"] >= 1
        await wait_until_async(lambda: counters(gateway).get("closes_4008", 0) == 1, T, "4008 counted")
        for probe in (*fast, stuck):
            await probe.close()
        doomed.ws.transport.abort()
    finally:
        stop.set()
        gateway.stop()
        publisher.close()


async def test_a_client_that_never_answers_pings_is_closed_by_the_heartbeat(infra) -> None:
    prefix = unique("gwbeat")
    gateway = start_gateway(infra.redis_url, prefix, ping_interval_s="0.3", ping_timeout_s="0.3")
    try:
        alive = await connect(gateway.ws_url, proxy=None)  # answers pings by itself
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=T) as silent:
            silent.sendall(
                b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            assert b" 101 " in silent.recv(4096)
            # and then it never answers a ping
            await wait_until_async(lambda: counters(gateway).get("closes_1011", 0) == 1, T, "keepalive close")
        pong = await alive.ping()
        await asyncio.wait_for(pong, T)  # the well-behaved one is still connected
        await alive.close()
    finally:
        gateway.stop()
