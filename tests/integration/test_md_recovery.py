"""md_service crashes, fails over, meets a zombie, loses Redis: every book stays right.

Every tier runs as its real command. A recorder subscribed to every delta channel sees
exactly what md_service published, so the tests can state the strong form of the
contract: per pair one epoch (or a new one only when Redis lost the stream), seqs 1, 2,
3, … with none missing and none repeated, whose deltas rebuild the book that the
exchange events in Kafka define. Clients connected through a gateway must see
contiguous seqs (or a clean resync) and end with that same book at the same seq.
"""

from __future__ import annotations

import os
import signal
from collections import defaultdict
from collections.abc import Iterator

import pytest
import redis

from bookcast.embedded_redis import EmbeddedRedis
from bookcast.processes import TierProcess, tier_env
from clients import BookClient
from feed_simulator.topic import ensure_topic
from mdcore.book import OrderBook
from mdcore.local_book import LocalBook
from mdcore.redis_layout import RedisLayout
from mdcore.status_bus import decode_status, status_key
from tests.integration.stack_helpers import (
    EXCHANGE_PAIRS,
    ChannelRecorder,
    Feeder,
    assert_streams_rebuild,
    source_books,
    stored_book,
    stored_state,
    unique,
    wait_until,
    wait_until_async,
)

pytestmark = pytest.mark.integration

PAIRS = EXCHANGE_PAIRS  # the pairs Feeder's exchange trades
PARTITIONS = 4
WAIT = 40.0


# --- clients -----------------------------------------------------------------------------


class Watchers:
    """BookClients through a gateway, each update recorded as (kind, epoch, seq)."""

    def __init__(self, url: str, count: int) -> None:
        self.updates: dict[tuple[int, str], list[tuple[str, str, int]]] = defaultdict(list)
        self.clients = [BookClient(url, list(PAIRS), on_update=self._recorder(i)) for i in range(count)]

    def _recorder(self, i: int):
        return lambda u: self.updates[(i, u.pair)].append((u.kind, u.epoch, u.seq))

    async def start(self) -> None:
        for client in self.clients:
            await client.start()
        for client in self.clients:
            await client.wait_synced(timeout=WAIT)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()

    async def assert_match(self, finals: dict[str, tuple[str, int, LocalBook]]) -> None:
        """Each client reaches every final (epoch, seq) with that book; seqs contiguous between snapshots."""
        for i, client in enumerate(self.clients):
            for pair, (epoch, seq, truth) in finals.items():
                await wait_until_async(
                    lambda c=client, p=pair, e=epoch, s=seq: (c.book(p).epoch, c.book(p).seq) == (e, s),
                    timeout=WAIT, what=f"client {i} {pair} at {epoch}/{seq}",
                )  # fmt: skip
                view = client.book(pair).as_snapshot()
                want = truth.to_snapshot()
                assert [tuple(x) for x in view.bids] == [tuple(x) for x in want.bids], (i, pair)
                assert [tuple(x) for x in view.asks] == [tuple(x) for x in want.asks], (i, pair)
                history = self.updates[(i, pair)]
                assert history and history[0][0] == "snapshot"
                for (kind, e, s), (_, prev_e, prev_s) in zip(history[1:], history, strict=False):
                    if kind == "delta":
                        assert (e, s) == (prev_e, prev_s + 1), (
                            f"client {i} {pair}: {prev_e}/{prev_s} -> {e}/{s}"
                        )


# --- stack -------------------------------------------------------------------------------


class Stack:
    def __init__(self, infra, redis_url: str | None = None) -> None:
        self.infra = infra
        self.redis_url = redis_url or infra.redis_url
        self.topic, self.prefix, self.group = unique("md-rec"), unique("mdrec"), unique("md-rec")
        ensure_topic(infra.kafka_bootstrap, self.topic, PARTITIONS)
        self.env = tier_env(
            infra.kafka_bootstrap, self.redis_url,
            topic=self.topic, redis_prefix=self.prefix, md_group=self.group, pairs=",".join(PAIRS),
            partitions=str(PARTITIONS),
            md_session_timeout_ms="2000", status_bus_s="0.3", md_check_ms="200",
            md_redis_timeout_ms="1000",
        )  # fmt: skip
        self.recorder = ChannelRecorder(self.redis_url, self.prefix, PAIRS, PARTITIONS)
        self.recorder.start()
        self.processes: list[TierProcess] = []

    def md(self, name: str) -> TierProcess:
        proc = TierProcess(name, "md_service", env={**self.env, "BOOKCAST_MD_INSTANCE": name}).start()
        self.processes.append(proc)
        return proc

    def gateway(self) -> TierProcess:
        proc = TierProcess("gateway", "gateway", env=self.env, listens=True).start()
        self.processes.append(proc)
        return proc

    def status(self, instance: str) -> dict | None:
        client = redis.Redis.from_url(self.redis_url)
        try:
            raw = client.get(status_key(self.prefix, "md", instance))
        except redis.RedisError:
            return None
        finally:
            client.close()
        return decode_status(raw)

    def assert_exactly_once(self, *instances: str) -> None:
        """No event skipped (the exchange's xseqs are contiguous), none read twice, none out of order.

        Redelivered events would be skipped by xseq anyway; zero duplicates shows that every
        instance resumed exactly where the stored windows end.
        """
        for name in instances:
            c = self.status(name)["counters"]
            assert (c["exchange_gaps"], c["events_duplicate"], c["events_late"]) == (0, 0, 0), (name, c)

    def counter(self, instance: str, *names: str) -> int:
        status = self.status(instance)
        return sum(status["counters"][name] for name in names) if status else 0

    def wait_both_own(self, a: str, b: str, what: str) -> None:
        wait_until(lambda: self.owns(a) and self.owns(b), timeout=WAIT, what=what)

    def owns(self, instance: str) -> list[int]:
        status = self.status(instance)
        return status["partitions"] if status else []

    def wait_published(self, feeder: Feeder) -> None:
        """Until md_service has written every pair through the last event produced."""
        for pair in PAIRS:
            last = str(feeder.produced(pair))
            wait_until(
                lambda p=pair, x=last: (
                    stored_state(self.redis_url, self.prefix, p, PARTITIONS).get("xseq") == x
                ),
                timeout=WAIT, what=f"{pair} written through xseq {last}",
            )  # fmt: skip

    def finals(self, feeder: Feeder, events: int | None = None) -> dict[str, tuple[str, int, LocalBook]]:
        """Stored book of every pair, checked against the book the events in Kafka define."""
        truth = source_books(self.infra.kafka_bootstrap, self.topic, PARTITIONS, events or feeder.delivered)
        out = {}
        for pair in PAIRS:
            state, book = stored_book(self.redis_url, self.prefix, pair, PARTITIONS)
            assert book.book == truth[pair].book, f"{pair}: md_service's book differs from the source"
            assert state.xseq == truth[pair].last_xseq
            out[pair] = (state.epoch, state.seq, book)
        return out

    def close(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.recorder.close()


@pytest.fixture
def stack(infra) -> Iterator[Stack]:
    s = Stack(infra)
    yield s
    s.close()


def books(finals: dict[str, tuple[str, int, LocalBook]]) -> dict[str, OrderBook]:
    """The final books of ``Stack.finals``, by pair."""
    return {pair: final[2].book for pair, final in finals.items()}


def assert_history_is_what_was_published(stack: Stack, pair: str, raws: list[bytes]) -> None:
    """The history stream holds every published delta byte for byte: any gap can be read back."""
    client = redis.Redis.from_url(stack.redis_url)
    try:
        entries = client.xrange(RedisLayout(stack.prefix, PARTITIONS).history_key(pair))
    finally:
        client.close()
    assert [fields[b"d"] for _, fields in entries] == raws
    assert [entry_id for entry_id, _ in entries] == [f"{seq}-0".encode() for seq in range(1, len(raws) + 1)]


# --- tests -------------------------------------------------------------------------------


async def test_sigkill_mid_stream_then_restart_continues_every_stream_exactly(stack, infra) -> None:
    md = stack.md("md-1")
    gateway = stack.gateway()
    feeder = Feeder(infra.kafka_bootstrap, stack.topic, count=3600, rate=600)
    feeder.start()
    watchers = Watchers(gateway.ws_url, 2)
    try:
        await watchers.start()
        wait_until(lambda: feeder.delivered > 1200, timeout=WAIT, what="a third of the events")
        md.kill()  # SIGKILL: nothing in md_service gets to run
        stack.md("md-2")
        feeder.join(WAIT)
        assert feeder.delivered == 3600 and feeder.failed == 0
        stack.wait_published(feeder)
        finals = stack.finals(feeder)
        for pair, (epoch, raws) in assert_streams_rebuild(stack.recorder, books(finals)).items():
            assert (epoch, len(raws)) == finals[pair][:2]
            assert_history_is_what_was_published(stack, pair, raws)
        await watchers.assert_match(finals)
        resumed = stack.status("md-2")["counters"]
        assert resumed["epochs_started"] == 0 and resumed["pairs_refused"] == 0
        stack.assert_exactly_once("md-2")
    finally:
        feeder.stop.set()
        await watchers.close()


async def test_failover_between_two_instances_continues_each_pair_from_redis(stack, infra) -> None:
    md_a, _md_b = stack.md("md-a"), stack.md("md-b")
    gateway = stack.gateway()
    stack.wait_both_own("md-a", "md-b", "both instances to own partitions")
    feeder = Feeder(infra.kafka_bootstrap, stack.topic, count=3000, rate=500)
    feeder.start()
    watchers = Watchers(gateway.ws_url, 2)
    try:
        await watchers.start()
        wait_until(lambda: feeder.delivered > 1000, timeout=WAIT, what="a third of the events")
        assert stack.status("md-a")["pairs"] > 0  # md-a's pairs are the ones that must fail over
        md_a.kill()
        wait_until(lambda: len(stack.owns("md-b")) == PARTITIONS, timeout=WAIT, what="md-b to take over")
        feeder.join(WAIT)
        stack.wait_published(feeder)
        finals = stack.finals(feeder)
        assert_streams_rebuild(stack.recorder, books(finals))
        await watchers.assert_match(finals)
        assert stack.status("md-b")["counters"]["pairs_refused"] == 0
        stack.assert_exactly_once("md-b")
    finally:
        feeder.stop.set()
        await watchers.close()


async def test_a_paused_instance_wakes_up_as_a_zombie_and_publishes_nothing(stack, infra) -> None:
    md_a, _md_b = stack.md("md-a"), stack.md("md-b")
    stack.wait_both_own("md-a", "md-b", "both instances to own partitions")
    feeder = Feeder(infra.kafka_bootstrap, stack.topic, count=3000, rate=500)
    feeder.start()
    try:
        wait_until(lambda: feeder.delivered > 800, timeout=WAIT, what="some events")
        os.kill(md_a.pid, signal.SIGSTOP)  # a long GC pause, a frozen VM: md-a keeps its state
        try:
            wait_until(lambda: len(stack.owns("md-b")) == PARTITIONS, timeout=WAIT, what="md-b to take over")
        finally:
            os.kill(md_a.pid, signal.SIGCONT)
        # md-a wakes with open windows for partitions md-b owns now; then the group splits
        # the partitions again and both go on.
        # md-a finds out (fenced by Redis, or told by the group first), then rejoins.
        wait_until(
            lambda: stack.counter("md-a", "partitions_lost", "partitions_released") >= 1, what="md-a to wake"
        )
        stack.wait_both_own("md-a", "md-b", "md-a to rejoin")
        feeder.join(WAIT)
        stack.wait_published(feeder)
        finals = stack.finals(feeder)
        assert_streams_rebuild(stack.recorder, books(finals))  # no seq twice, none missing
        stack.assert_exactly_once("md-a", "md-b")
    finally:
        feeder.stop.set()


async def test_redis_paused_then_wiped_clients_resync_to_a_new_epoch(infra) -> None:
    own_redis = EmbeddedRedis().start()
    port = own_redis.port
    stack = Stack(infra, own_redis.url)
    watchers = None
    try:
        md = stack.md("md-1")
        gateway = stack.gateway()
        feeder = Feeder(infra.kafka_bootstrap, stack.topic, count=1500, rate=500)
        feeder.start()
        watchers = Watchers(gateway.ws_url, 1)
        await watchers.start()
        wait_until(lambda: feeder.delivered > 500, timeout=WAIT, what="some events")
        os.kill(own_redis.pid, signal.SIGSTOP)  # unavailable (not lost) for a while
        try:  # md_service must wait it out, retrying the same window, not skip it
            wait_until(lambda: "redis unavailable" in md.log_tail(), timeout=WAIT, what="md to notice")
        finally:
            os.kill(own_redis.pid, signal.SIGCONT)
        feeder.join(WAIT)
        stack.wait_published(feeder)
        finals = stack.finals(feeder)
        assert_streams_rebuild(stack.recorder, books(finals))
        await watchers.assert_match(finals)
        stack.assert_exactly_once("md-1")

        # Now Redis restarts empty while every pair is quiet: md_service must notice at its next
        # check and publish each book whole in a new epoch at once.
        own_redis.stop()
        own_redis = EmbeddedRedis(port=port).start()
        for pair in PAIRS:
            wait_until(
                lambda p=pair: stored_state(stack.redis_url, stack.prefix, p, PARTITIONS).get("seq") == "1",
                timeout=WAIT, what=f"{pair} in a new epoch",
            )  # fmt: skip
        renewed = stack.finals(feeder)
        for pair in PAIRS:
            assert renewed[pair][0] != finals[pair][0] and renewed[pair][2].book == finals[pair][2].book
        stack.assert_exactly_once("md-1")
        # The stream goes on in the new epoch, and the client follows it by a clean resync.
        more = Feeder(infra.kafka_bootstrap, stack.topic, count=120, rate=500, exchange=feeder.exchange)
        more.start()
        more.join(WAIT)
        stack.wait_published(more)
        latest = stack.finals(more, events=feeder.delivered + more.delivered)
        await watchers.assert_match(latest)
        for pair in PAIRS:  # the client moved to the new epoch by a snapshot
            assert ("snapshot", latest[pair][0]) in [(k, e) for k, e, _ in watchers.updates[(0, pair)]]
            assert latest[pair][0] == renewed[pair][0]
    finally:
        if watchers is not None:
            await watchers.close()
        stack.close()
        own_redis.stop()


def copy_of_redis(redis_url: str, prefix: str) -> dict[bytes, bytes]:
    client = redis.Redis.from_url(redis_url)
    try:
        return {key: client.dump(key) for key in client.keys(f"{prefix}:*")}
    finally:
        client.close()


def roll_back(redis_url: str, prefix: str, saved: dict[bytes, bytes]) -> None:
    """Redis as it was when ``saved`` was taken: a lagging replica promoted, an older RDB loaded."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(*client.keys(f"{prefix}:*"))
        for key, value in saved.items():
            client.restore(key, 0, value, replace=True)
    finally:
        client.close()


def seqs(stack: Stack) -> dict[str, int]:
    return {
        pair: int(stored_state(stack.redis_url, stack.prefix, pair, PARTITIONS).get("seq", 0))
        for pair in PAIRS
    }


async def test_redis_lost_its_last_writes_and_md_restarted_no_seq_is_published_twice(stack, infra) -> None:
    md = stack.md("md-1")
    feeder = Feeder(infra.kafka_bootstrap, stack.topic, count=3000, rate=500)
    feeder.start()
    try:
        wait_until(lambda: min(seqs(stack).values()) >= 3, timeout=WAIT, what="every pair published")
        os.kill(md.pid, signal.SIGSTOP)  # nothing is written while Redis is copied: one instant
        try:
            saved, at_copy = copy_of_redis(stack.redis_url, stack.prefix), seqs(stack)
        finally:
            os.kill(md.pid, signal.SIGCONT)
        wait_until(
            lambda: all(seqs(stack)[p] >= at_copy[p] + 5 for p in PAIRS), timeout=WAIT, what="more seqs out"
        )
        md.kill()
        roll_back(stack.redis_url, stack.prefix, saved)  # the seqs published since are gone from Redis
        stack.md("md-2")  # restarted on the same host: the same write marks (BOOKCAST_MD_STATE_DIR)
        feeder.join(WAIT)
        stack.wait_published(feeder)
        finals = stack.finals(feeder)
        seen: dict[tuple[str, str, int], bytes] = {}
        for pair, epoch, seq, raw in list(stack.recorder.messages):
            assert seen.setdefault((pair, epoch, seq), raw) == raw, f"{pair} {epoch}/{seq} published twice"
        for pair in PAIRS:
            streams = stack.recorder.streams(pair)
            assert len(streams) == 2, pair  # the old epoch, then a new one after the restart
            epoch, numbers, _ = streams[-1]
            assert numbers == list(range(1, len(numbers) + 1)) and finals[pair][:2] == (epoch, len(numbers))
        assert stack.status("md-2")["counters"]["writes_lost"] >= 1
    finally:
        feeder.stop.set()
