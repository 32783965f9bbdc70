"""The gateway inside the real pipeline: feed -> Kafka -> md_service -> Redis -> gateway -> clients.

1. Redis is killed and restarted mid-stream (md_service's state is lost with it: a new
   epoch): every client converges to the source book (rebuilt from Kafka) at md_service's
   last seq, and every change of book it saw was announced (a snapshot), never a silent gap.
2. A client that stops reading does not delay the others (their latency is measured
   meanwhile) and, once it reads again, gets a snapshot, never a gap.

Each test runs its own Redis, md_service and gateway (real commands, own processes).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest

from bookcast.embedded_redis import EmbeddedRedis
from bookcast.processes import TierProcess, tier_env
from clients import BookClient, ClientOptions
from feed_simulator.config import add_arguments as feed_arguments
from feed_simulator.config import load_config as feed_config
from feed_simulator.producer import run_feed
from feed_simulator.topic import ensure_topic
from mdcore.messages import Snapshot
from tests.integration.gateway_helpers import Probe, counters, http_get, latencies_after, stalled_probe
from tests.integration.stack_helpers import (
    source_books,
    stored_book,
    stored_state,
    unique,
    wait_until,
    wait_until_async,
)

pytestmark = pytest.mark.integration

PAIRS = ("BTC-USD", "ETH-USD", "SOL-USD")
PARTITIONS = 4
T = 40.0


class Stack:
    """Its own Redis, plus md_service and a one-worker gateway on it, and a feed thread."""

    def __init__(self, kafka: str, **gateway_settings: str) -> None:
        self.redis = EmbeddedRedis().start()
        self.topic, self.prefix = unique("gwe2e"), unique("gwe2e")
        self.env = tier_env(
            kafka, self.redis.url, topic=self.topic, redis_prefix=self.prefix, md_group=unique("md"),
            pairs=",".join(PAIRS), partitions=str(PARTITIONS), md_session_timeout_ms="2000",
            gateway_metrics_port="0",
            **{f"gateway_{k}": v for k, v in gateway_settings.items()},
        )  # fmt: skip
        ensure_topic(kafka, self.topic, PARTITIONS)
        self.md = TierProcess("md", "md_service", env=self.env).start()
        self.gateway = TierProcess("gateway", "gateway", ["--workers", "1"], env=self.env, listens=True)
        self.gateway.start()
        self.feed: threading.Thread | None = None
        self.report: list[object] = []

    def run_feed(self, events: int, rate: int, seed: int) -> None:
        parser = argparse.ArgumentParser()
        feed_arguments(parser)
        args = parser.parse_args(["--rate", str(rate), "--pairs", ",".join(PAIRS), "--seed", str(seed)])
        cfg = feed_config(args, {**self.env, "BOOKCAST_PARTITIONS": str(PARTITIONS)})
        self.feed = threading.Thread(target=lambda: self.report.append(run_feed(cfg, max_events=events)))
        self.feed.start()

    def stop(self) -> None:
        if self.feed is not None:
            self.feed.join(timeout=T)
        self.gateway.stop()
        self.md.stop()
        self.redis.stop()


def settle(stack: Stack, kafka: str, events: int) -> dict:
    """The source books from Kafka, once md_service has published every event of the feed."""
    truth = source_books(kafka, stack.topic, PARTITIONS, events)
    url, prefix = stack.redis.url, stack.prefix
    for pair, src in truth.items():
        last = str(src.last_xseq)
        wait_until(
            lambda p=pair, x=last: stored_state(url, prefix, p, PARTITIONS).get("xseq") == x,
            T,
            f"{pair} through xseq {last}",
        )
    return truth


@pytest.fixture
def stack_factory(infra) -> Iterator[object]:
    stacks: list[Stack] = []

    def make(**settings: str) -> Stack:
        stacks.append(Stack(infra.kafka_bootstrap, **settings))
        return stacks[-1]

    yield make
    for stack in stacks:
        stack.stop()


async def test_redis_killed_and_restarted_mid_stream_every_client_converges(infra, stack_factory) -> None:
    stack = stack_factory(redis_dead_s="1", redis_ping_s="0.2")
    events, rate = 3000, 300
    seen: dict[tuple[int, str], list[tuple[str, str, int]]] = defaultdict(list)
    options = ClientOptions(resync_retry=1.0)

    def recorder(cid: int):
        return lambda u: seen[(cid, u.pair)].append((u.kind, u.epoch, u.seq))

    url = stack.gateway.ws_url
    clients = [BookClient(url, PAIRS, options=options, on_update=recorder(i)) for i in range(3)]
    for client in clients:
        await client.start()
    stack.run_feed(events, rate, seed=23)
    try:
        for client in clients:
            await client.wait_synced(timeout=T)
        await wait_until_async(lambda: all(c.stats.deltas >= 20 for c in clients), T, "deltas first")
        before = {p: stored_state(stack.redis.url, stack.prefix, p, PARTITIONS)["epoch"] for p in PAIRS}

        port = stack.redis.port
        os.kill(stack.redis.pid, signal.SIGKILL)  # Redis dies with everything it held
        stack.redis.stop()
        wait_until(lambda: http_get(stack.gateway, "/health")[0] == 503, T, "/health to report the dead link")
        time.sleep(1.0)  # the outage: md_service retries, the gateway reconnects with backoff
        stack.redis = EmbeddedRedis(port=port).start()

        await wait_until_async(lambda: not stack.feed.is_alive(), T * 2, "the feed to finish")
        truth = settle(stack, infra.kafka_bootstrap, events)
        final = {pair: stored_book(stack.redis.url, stack.prefix, pair, PARTITIONS) for pair in PAIRS}
        for pair, (state, md_book) in final.items():
            assert state.epoch != before[pair], "Redis lost the stream: md_service must start a new epoch"
            assert md_book.book == truth[pair].book
            for client in clients:
                await client.wait_for(
                    lambda c=client, p=pair, s=state: (c.book(p).epoch, c.book(p).seq) == (s.epoch, s.seq), T
                )
        for cid, client in enumerate(clients):
            # the new epoch reached every client as a snapshot, before any of its deltas
            assert client.stats.checksum_failures == 0 and client.stats.gaps == 0, client.stats.as_dict()
            for pair in PAIRS:
                view = client.book(pair).as_snapshot()
                expected = final[pair][1].to_snapshot()
                assert [tuple(x) for x in view.bids] == [tuple(x) for x in expected.bids]
                assert [tuple(x) for x in view.asks] == [tuple(x) for x in expected.asks]
                # every applied delta continued the book it was applied to: a new epoch or a
                # skipped seq was always preceded by a snapshot
                last: tuple[str, int] | None = None
                for kind, epoch, seq in seen[(cid, pair)]:
                    if kind == "delta":
                        assert last == (epoch, seq - 1), f"client {cid} {pair}: {last} -> {epoch}/{seq}"
                    last = (epoch, seq)
        c = counters(stack.gateway)
        assert c["redis_disconnects"] >= 1 and c["redis_connects"] >= 2
        assert c["replica_reloads"] >= 2 * len(PAIRS)  # the first load, and the new epoch
        assert http_get(stack.gateway, "/health")[0] == 200
    finally:
        for client in clients:
            await client.close()


async def test_a_stuck_client_in_the_real_pipeline_delays_nobody_and_is_healed(infra, stack_factory) -> None:
    stack = stack_factory(high_water=str(32 * 1024), low_water=str(8 * 1024), send_buffer=str(8 * 1024))
    url = stack.gateway.ws_url
    fast = [await Probe.open(url) for _ in range(3)]
    stuck = await stalled_probe(url)
    for probe in (*fast, stuck):
        await probe.send(op="subscribe", pairs=list(PAIRS), id=1)
    stack.run_feed(6000, 1000, seed=5)  # ~6 s of a busy market
    try:
        for probe in (*fast, stuck):
            for pair in PAIRS:
                await probe.wait_seq(pair, 1)
        stuck.ws.transport.pause_reading()
        stalled_ns = time.time_ns()
        await wait_until_async(lambda: counters(stack.gateway).get("slow_paused", 0) >= 1, T, "stale")
        await wait_until_async(
            lambda: sum(len(latencies_after(p, stalled_ns)) for p in fast) >= 3 * 3 * 15, T, "traffic"
        )
        during = [ms for p in fast for ms in latencies_after(p, stalled_ns)]
        p99 = statistics.quantiles(during, n=100)[98]
        p50 = statistics.median(during)
        # The traffic condition above is the correctness check (the others kept receiving);
        # how fast is a figure for the benchmarks, printed here, not a threshold of this test.
        print(f"window -> receipt of the others while one is stuck: p50 {p50:.1f} p99 {p99:.1f} ms")
        stuck.ws.transport.resume_reading()
        await wait_until_async(lambda: not stack.feed.is_alive(), T, "the feed to finish")
        settle(stack, infra.kafka_bootstrap, 6000)
        for pair in PAIRS:
            seq = int(stored_state(stack.redis.url, stack.prefix, pair, PARTITIONS)["seq"])
            for probe in (*fast, stuck):
                await probe.wait_seq(pair, seq)  # every delta checked: no gap, good checksums
        assert len(stuck.of_type(Snapshot)) > len(PAIRS), "the stuck client was healed without a snapshot"
        assert counters(stack.gateway)["slow_conflations"] >= 1
    finally:
        for probe in (*fast, stuck):
            await probe.close()
