"""The gateway against real Redis, fed by a synthetic md_service (same Redis layout, real deltas).

Packed frames (one per window per client, shared by clients with the same pairs), recovery
with ``since`` from memory, from md_service's history, and a snapshot when neither reaches,
Pub/Sub loss healed from history, and Redis channels held only while wanted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from bookcast.bench.fanout_publisher import SyntheticPublisher
from mdcore.messages import Ack, ErrorMessage, Snapshot
from mdcore.redis_layout import RedisLayout
from tests.integration.gateway_helpers import PAIRS, Probe, T, counters, start_gateway
from tests.integration.stack_helpers import unique, wait_until_async

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix() -> str:
    return unique("gw")


@pytest.fixture
def publisher(infra, prefix) -> Iterator[SyntheticPublisher]:
    pub = SyntheticPublisher(infra.redis_url, prefix, PAIRS, seed=7, history=40)
    pub.window()  # every pair has a stream before the gateway starts
    yield pub
    pub.close()


async def test_one_packed_frame_per_window_shared_by_clients_with_the_same_pairs(infra, prefix, publisher):
    gateway = start_gateway(infra.redis_url, prefix)
    try:
        a, b = await Probe.open(gateway.ws_url), await Probe.open(gateway.ws_url)
        c = await Probe.open(gateway.ws_url)
        for probe in (a, b):
            await probe.send(op="subscribe", pairs=list(PAIRS), id=1)
        await c.send(op="subscribe", pairs=["BTC-USD", "ETH-USD"], id=2)
        for probe in (a, b, c):
            await probe.wait_seq("BTC-USD", publisher.pairs["BTC-USD"].seq)
        before = counters(gateway)
        frames_before = a.frames
        windows = 20
        for _ in range(windows):
            publisher.window()
            await asyncio.sleep(0.02)  # a window every 20 ms: a burst of its own (or merged with the next)
        last = publisher.pairs["DOT-USD"].seq
        for probe in (a, b):
            await probe.wait_seq("DOT-USD", last)
        await c.wait_seq("ETH-USD", publisher.pairs["ETH-USD"].seq)
        got = a.frames - frames_before
        # one frame per window (a window split over two Redis reads costs one more): not 8 per window
        assert got <= windows * 1.5, f"{got} frames for {windows} windows of 8 pairs: deltas were not packed"
        after = counters(gateway)
        built = after["frames_built"] - before.get("frames_built", 0)
        sent = after["frames_out"] - before.get("frames_out", 0)
        assert built <= 2 * windows * 1.5 and sent >= 1.5 * built, (built, sent)  # a and b share a frame
        assert after["deltas_out"] - before.get("deltas_out", 0) == windows * (8 + 8 + 2)
        for probe in (a, b, c):
            for pair, book in probe.books.items():
                assert book.book == publisher.pairs[pair].book, pair
            await probe.close()
    finally:
        gateway.stop()


async def test_since_recovers_from_memory_from_history_and_else_snapshots(infra, prefix, publisher):
    # Memory keeps 2 deltas per pair; md_service's history (the publisher's) keeps 40. A delta
    # here is ~260 bytes and a snapshot ~1.8 KB: a replay of 4 is cheaper, one of 20 is not.
    gateway = start_gateway(infra.redis_url, prefix, recent="2")
    pair = "ETH-USD"
    try:
        probe = await Probe.open(gateway.ws_url)
        await probe.send(op="subscribe", pairs=[pair], id=1)
        await probe.wait_seq(pair, publisher.pairs[pair].seq)
        await probe.close()

        async def reconnect_after(missed: int) -> Probe:
            position = probe_book.position
            for _ in range(missed):
                publisher.window(pairs=[pair])
            again = await Probe.open(gateway.ws_url, books={pair: probe_book})
            since = {pair: {"epoch": position.epoch, "seq": position.seq}}
            await again.send(op="subscribe", pairs=[pair], id=9, since=since)
            await again.wait_seq(pair, publisher.pairs[pair].seq)
            return again

        probe_book = probe.books[pair]
        # 1. within the replica's memory
        r1 = await reconnect_after(2)
        # 2. beyond memory, within history (read from Redis), cheaper than a snapshot
        probe_book = r1.books[pair]
        await r1.close()
        r2 = await reconnect_after(4)
        # 3. within history, but the replay would cost more bytes than a snapshot: a snapshot
        probe_book = r2.books[pair]
        await r2.close()
        r3 = await reconnect_after(20)
        # 4. beyond history: a snapshot
        probe_book = r3.books[pair]
        await r3.close()
        r4 = await reconnect_after(60)
        acks = [p.of_type(Ack)[0] for p in (r1, r2, r3, r4)]
        assert [a.recovered for a in acks] == [True, True, False, False]
        assert [len(p.of_type(Snapshot)) for p in (r1, r2, r3, r4)] == [0, 0, 1, 1]
        assert [k for k, _, _ in r1.kinds] == ["delta"] * 2
        assert [k for k, _, _ in r2.kinds] == ["delta"] * 4
        for p in (r1, r2, r3, r4):
            assert p.books[pair].book == publisher.pairs[pair].book
            await p.close()
        c = counters(gateway)
        assert c["recoveries"] == 2 and c["recovery_misses"] == 2 and c["recovery_history_reads"] >= 1
        assert c["recovery_snapshot_cheaper"] >= 1
    finally:
        gateway.stop()


async def test_pubsub_loss_is_filled_from_history_even_for_a_quiet_pair(infra, prefix, publisher):
    gateway = start_gateway(infra.redis_url, prefix, audit_s="0.3")
    try:
        probe = await Probe.open(gateway.ws_url)
        await probe.send(op="subscribe", pairs=["BTC-USD", "SOL-USD"], id=1)
        await probe.wait_seq("SOL-USD", publisher.pairs["SOL-USD"].seq)
        # BTC: lost, then the next delta reveals the gap. SOL: lost and then quiet: only the
        # audit (md_service's state vs the replica) can tell.
        publisher.window(pairs=["BTC-USD", "SOL-USD"], silent=["BTC-USD", "SOL-USD"])
        publisher.window(pairs=["BTC-USD"])
        await probe.wait_seq("BTC-USD", publisher.pairs["BTC-USD"].seq)
        await probe.wait_seq("SOL-USD", publisher.pairs["SOL-USD"].seq)
        assert len(probe.of_type(Snapshot)) == 2  # only the first ones: the gaps were filled with deltas
        c = counters(gateway)
        assert c["replica_gaps"] >= 1 and c["replica_history_fills"] >= 2 and c["audit_behind"] >= 1
        await probe.close()
    finally:
        gateway.stop()


async def test_redis_channels_exist_only_while_wanted_plus_a_linger(infra, prefix, publisher):
    gateway = start_gateway(infra.redis_url, prefix, linger_s="0.5")
    client = redis.Redis.from_url(infra.redis_url)
    channel = RedisLayout(prefix).delta_channel("LTC-USD")

    def subscribers() -> int:
        return dict(client.pubsub_shardnumsub(channel))[channel.encode()]

    try:
        assert subscribers() == 0
        probe = await Probe.open(gateway.ws_url)
        await probe.send(op="subscribe", pairs=["LTC-USD"], id=1)
        await probe.wait_seq("LTC-USD", publisher.pairs["LTC-USD"].seq)
        assert subscribers() == 1
        await probe.send(op="unsubscribe", pairs=["LTC-USD"], id=2)
        await wait_until_async(lambda: probe.of_type(Ack)[-1].type == "unsubscribed", T, "unsubscribed")
        assert subscribers() == 1  # lingering
        started = time.monotonic()
        await wait_until_async(lambda: subscribers() == 0, T, "the channel to be dropped")
        assert time.monotonic() - started >= 0.3
        # and back: a new subscriber gets a fresh replica
        publisher.window(pairs=["LTC-USD"])
        await probe.send(op="subscribe", pairs=["LTC-USD"], id=3)
        await probe.wait_seq("LTC-USD", publisher.pairs["LTC-USD"].seq)
        assert not probe.of_type(ErrorMessage)
        await probe.close()
    finally:
        client.close()
        gateway.stop()
