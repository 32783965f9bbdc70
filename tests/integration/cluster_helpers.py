"""What the Redis Cluster tests share: a stack on a cluster, a witness of what clients held,
and the source and stored books at the end.

The witness records, for every (pair, epoch, seq) a client held, the checksum of the book it
held there: two checksums for one position would be a seq republished with other content,
which no fault may cause. It also timestamps every update, to say how long a pair was dark.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from confluent_kafka import Consumer, TopicPartition

from bookcast.embedded_cluster import EmbeddedRedisCluster
from bookcast.processes import TierProcess, tier_env
from clients import BookClient
from clients.updates import BookUpdate
from feed_simulator.topic import ensure_topic
from mdcore.local_book import LocalBook
from mdcore.redis_layout import RedisLayout, StoredState
from tests.integration.pipeline_helpers import feed_in_background, feed_settings, md_and_gateway
from tests.integration.stack_helpers import source_books, stored_book, unique, wait_until, wait_until_async


def cluster_env(
    infra: object,
    cluster: EmbeddedRedisCluster,
    name: str,
    pairs: Sequence[str],
    partitions: int,
    **settings: str,
) -> tuple[dict[str, str], str, RedisLayout]:
    """The tiers' environment on ``cluster`` with a topic and prefix of their own."""
    topic, prefix = unique(f"{name}-deltas"), unique(name)
    bootstrap = infra.kafka_bootstrap  # type: ignore[attr-defined]
    ensure_topic(bootstrap, topic, partitions)
    env = tier_env(
        bootstrap, cluster.url, topic=topic, redis_prefix=prefix, md_group=unique("md"),
        pairs=",".join(pairs), partitions=str(partitions), **settings,
    )  # fmt: skip
    env["REDIS_CLUSTER"] = cluster.seeds
    return env, topic, RedisLayout(prefix, partitions)


class Witness:
    """Verifying clients on every pair, and what they held (see the module docstring)."""

    def __init__(self, pairs: Sequence[str]) -> None:
        self.pairs = list(pairs)
        self.seen: dict[tuple[str, str, int], set[int]] = defaultdict(set)
        self.times: dict[str, list[float]] = defaultdict(list)
        self.clients: list[BookClient] = []

    def client(self, url: str) -> BookClient:
        index = len(self.clients)
        self.clients.append(BookClient(url, self.pairs, on_update=lambda u: self._record(index, u)))
        return self.clients[-1]

    def _record(self, index: int, update: BookUpdate) -> None:
        snap = self.clients[index].book(update.pair).as_snapshot()
        if snap is not None:
            self.seen[(update.pair, update.epoch, update.seq)].add(snap.checksum)
        self.times[update.pair].append(time.monotonic())

    def flowing_since(self, t: float) -> bool:
        return all(any(u > t for u in self.times[p]) for p in self.pairs)

    def dark_s(self, pair: str, fault: float, end: float) -> float:
        """The pair's longest time without an update around ``fault`` (until ``end``)."""
        before, longest = fault, 0.0
        for t in self.times[pair]:
            if t <= fault:
                before = t
                continue
            longest = max(longest, t - before)
            before = t
        return max(longest, end - before)

    def twice(self) -> list[tuple[str, str, int]]:
        """Positions held with two different books (must be none)."""
        return [key for key, sums in self.seen.items() if len(sums) > 1]

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


def topic_events(bootstrap: str, topic: str, partitions: int) -> int:
    """How many events the topic holds (for a feed that ran without a limit)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("count")})
    try:
        total = 0
        for p in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def stored_books(
    cluster: EmbeddedRedisCluster, layout: RedisLayout, last_xseq: dict[str, int], timeout: float = 60
) -> dict[str, tuple[StoredState, LocalBook]]:
    """Each pair's stored book once md_service wrote it through ``last_xseq[pair]``."""

    def loaded(pair: str) -> tuple[StoredState, LocalBook] | None:
        return stored_book(cluster.url, layout.prefix, pair, layout.partitions)

    for pair, xseq in last_xseq.items():
        wait_until(
            lambda p=pair, x=xseq: (got := loaded(p)) is not None and got[0].xseq == x,
            timeout=timeout, what=f"{pair} written through xseq {xseq}",
        )  # fmt: skip
    return {pair: loaded(pair) for pair in last_xseq}  # type: ignore[misc]


async def assert_clients_hold(witness: Witness, final: dict[str, tuple[StoredState, LocalBook]]) -> None:
    """Every client ends at md_service's last position of every pair, with the same book."""
    for client in witness.clients:
        for pair, (state, md_book) in final.items():
            await wait_until_async(
                lambda c=client, p=pair, s=state: (c.book(p).epoch, c.book(p).seq) == (s.epoch, s.seq),
                timeout=30, what=f"{pair} at {state.epoch}/{state.seq}",
            )  # fmt: skip
            view = client.book(pair).as_snapshot()
            assert view is not None and view.checksum == md_book.to_snapshot().checksum, pair
        assert client.stats.checksum_failures == 0, client.stats.as_dict()
    twice = witness.twice()
    assert not twice, f"positions held with two different books: {twice[:5]}"


@asynccontextmanager
async def flowing(
    env: dict[str, str], pairs: Sequence[str], rate: float, seed: int, partitions: int, steady: int = 10
) -> AsyncIterator[tuple[Witness, TierProcess, Callable[[], None]]]:
    """md_service, a gateway, the feed and two witnessed clients, once every pair has flowed
    ``steady`` updates; yields (witness, gateway, stop the feed)."""
    witness, stop = Witness(pairs), threading.Event()
    with md_and_gateway(env) as (_md, gateway):
        feed = feed_in_background(feed_settings(env, pairs, rate, seed, partitions), None, stop)

        def stop_feed() -> None:
            stop.set()
            feed.join(timeout=30)

        try:
            for client in [witness.client(gateway.ws_url) for _ in range(2)]:
                await client.start()
                await client.wait_synced(timeout=60)
            await wait_until_async(
                lambda: all(len(witness.times[p]) >= steady for p in pairs), timeout=60, what="steady flow"
            )
            yield witness, gateway, stop_feed
        finally:
            stop_feed()
            await witness.close()


async def assert_books_heal(
    bootstrap: str, cluster: EmbeddedRedisCluster, topic: str, layout: RedisLayout, witness: Witness
) -> None:
    """After the feed stopped: md_service's stored books equal the source, and every client
    holds them at md_service's last position, no position ever held with two books."""
    events = topic_events(bootstrap, topic, layout.partitions)
    truth = source_books(bootstrap, topic, layout.partitions, events)
    final = stored_books(cluster, layout, {pair: src.last_xseq for pair, src in truth.items()})
    for pair, (_state, md_book) in final.items():
        assert md_book.book == truth[pair].book, f"{pair}: stored book differs from the source"
    await assert_clients_hold(witness, final)
