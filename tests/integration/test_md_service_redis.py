"""MdService against a real Redis, with Kafka replaced by a scripted source: deterministic
zombies, lost replies, lost state. (The real-Kafka versions are in test_md_recovery.py.)"""

from __future__ import annotations

import time

import pytest
import redis

from md_service.config import MdConfig
from md_service.redis_store import RedisStore
from md_service.service import MdService
from mdcore.codec import decode_delta, decode_snapshot
from mdcore.events import encode_event
from mdcore.local_book import LocalBook
from mdcore.redis_layout import RedisLayout
from tests.integration.stack_helpers import rebuild, stored_book, unique
from tests.kafka_fakes import FakeMessage

pytestmark = pytest.mark.integration

PAIR = "BTC-USD"


class ScriptedSource:
    """Stands in for KafkaSource: the test hands it batches and triggers assignments."""

    def __init__(self, on_assign, on_revoke) -> None:
        self.on_assign, self.on_revoke = on_assign, on_revoke
        self.fetching: dict[int, int | None] = {}  # partition -> where reading was last (re)started
        self.commits: list[dict[int, int]] = []

    def poll(self, timeout):
        return []

    def rewind(self, partition):
        raise AssertionError("no rewind expected")

    def fetch(self, starts):
        self.fetching.update(starts)

    def unfetch(self, partitions):
        for p in partitions:
            self.fetching.pop(p, None)

    def partitions(self):
        return None  # unknown: no adoption in these tests

    def commit(self, offsets):
        self.commits.append(offsets)

    def close(self):
        pass


class Instance:
    def __init__(self, infra, prefix: str, name: str, store_cls=RedisStore, **settings) -> None:
        cfg = MdConfig(
            infra.kafka_bootstrap, infra.redis_url, topic="events", redis_prefix=prefix, instance=name,
            **settings,
        )  # fmt: skip
        self.store = store_cls(infra.redis_url, RedisLayout(prefix), "events", 600)
        self.service = MdService(cfg, self.store, ScriptedSource, clock_ns=lambda: 1_800_000_000_000_000_000)
        self.source: ScriptedSource = self.service.source  # type: ignore[assignment]
        self.offset = 0

    def assign(self, *partitions: int) -> dict:
        return self.service._on_assign(list(partitions))

    def events(self, *xseqs: int, qty: str = "1", pair: str = PAIR, partition: int = 0) -> None:
        msgs = []
        for xseq in xseqs:
            value = encode_event(pair, xseq, xseq, [("b", f"{100 + xseq}.00", qty)])
            msgs.append(FakeMessage(value, pair.encode(), partition, offset=xseq - 1, topic="events"))
        self.service.intake.handle_batch(msgs)

    def window(self, check: bool = False) -> None:
        assert self.service.write_window(check)


@pytest.fixture
def prefix() -> str:
    return unique("mdsvc")


@pytest.fixture
def channel(infra, prefix):
    client = redis.Redis.from_url(infra.redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.ssubscribe(RedisLayout(prefix).delta_channel(PAIR))
    pubsub.get_message(timeout=1.0)

    def drain() -> list[bytes]:
        client.spublish(RedisLayout(prefix).delta_channel(PAIR), b"end")
        out = []
        while (msg := pubsub.get_message(timeout=5.0)) is not None and msg["data"] != b"end":
            out.append(msg["data"])
        return out

    yield drain
    pubsub.close()
    client.close()


def test_a_zombie_is_fenced_and_the_new_owner_continues_the_stream(infra, prefix, channel) -> None:
    a, b = Instance(infra, prefix, "a"), Instance(infra, prefix, "b")
    assert a.assign(0) == {0: None}
    a.events(1, 2, 3)
    a.window()
    assert [decode_delta(d).seq for d in channel()] == [1]

    assert b.assign(0) == {0: 3}  # the group moved partition 0 to b: it resumes after a's window
    a.events(4)  # a has not noticed: it applies and tries to write seq 2
    a.window()
    assert channel() == []  # nothing of the zombie reached a subscriber
    assert a.service.counters.partitions_lost == 1 and a.source.fetching == {0: None}
    assert a.service.status()["partitions_fenced"] == [0] and a.service.status()["partitions"] == []
    a.events(5)
    a.window()  # a keeps its book warm (the group still gives it partition 0) and writes nothing
    assert channel() == [] and a.service.streams[PAIR].xseq == 5

    b.events(4, 5)
    b.window()
    published = [decode_delta(d) for d in channel()]
    assert [(d.epoch, d.seq) for d in published] == [(b.service.streams[PAIR].epoch, 2)]
    state, book = stored_book(infra.redis_url, prefix, PAIR)
    assert (state.seq, state.xseq) == (2, 5) and book.book == b.service.streams[PAIR].book


class LosesFirstReply(RedisStore):
    """The first window write reaches Redis, but its reply is lost (a timeout)."""

    lost = False

    def write_window(self, parts, outputs):
        result = super().write_window(parts, outputs)
        if not self.lost and outputs:
            self.lost = True
            raise redis.TimeoutError("reply lost")
        return result


def test_a_retried_write_whose_first_attempt_landed_is_not_mistaken_for_lost_state(
    infra, prefix, channel
) -> None:
    inst = Instance(infra, prefix, "a", store_cls=LosesFirstReply)
    inst.assign(0)
    inst.events(1, 2)
    inst.window()
    epoch = inst.service.streams[PAIR].epoch
    inst.events(3)
    inst.window()
    assert [(decode_delta(d).epoch, decode_delta(d).seq) for d in channel()] == [(epoch, 1), (epoch, 2)]
    assert inst.service.counters.pairs_refused == 0 and inst.service.counters.redis_errors == 1


def test_lost_state_of_a_quiet_pair_is_republished_in_a_new_epoch_at_the_next_check(
    infra, prefix, channel
) -> None:
    inst = Instance(infra, prefix, "a")
    inst.assign(0)
    inst.events(1, 2, 3)
    inst.window()
    old_epoch = inst.service.streams[PAIR].epoch
    channel()
    client = redis.Redis.from_url(infra.redis_url)
    try:
        client.delete(*client.keys(f"{prefix}:*"))  # Redis lost everything (a restart without persistence)
    finally:
        client.close()
    inst.window()  # no event, no check: nothing to write, nothing noticed
    assert channel() == []
    inst.window(check=True)  # the check finds the partition unowned: claim it again, new epochs
    inst.window()
    (delta,) = [decode_delta(d) for d in channel()]
    assert delta.epoch != old_epoch and delta.seq == 1
    _state, book = stored_book(infra.redis_url, prefix, PAIR)
    assert book.book == inst.service.streams[PAIR].book and book.book.depth("b") == 3
    assert [tuple(x) for x in delta.bids] == [tuple(x) for x in book.to_snapshot().bids]  # the whole book


def test_a_refused_pair_continues_in_a_new_epoch_replacing_what_redis_holds(infra, prefix, channel) -> None:
    inst = Instance(infra, prefix, "a")
    inst.assign(0)
    inst.events(1)
    inst.window()
    inst.events(2)
    inst.window()
    client = redis.Redis.from_url(infra.redis_url)
    try:  # Redis failed over to a replica that missed the last write
        client.hset(RedisLayout(prefix).state_key(PAIR), mapping={"seq": 1, "xseq": 1})
    finally:
        client.close()
    inst.events(3)
    inst.window()  # refused: Redis holds seq 1, not 2
    inst.window()  # the new epoch, with the whole book
    deltas = [decode_delta(d) for d in channel()]
    assert [d.seq for d in deltas] == [1, 2, 1] and deltas[2].epoch != deltas[0].epoch
    state, book = stored_book(infra.redis_url, prefix, PAIR)
    assert state.epoch == deltas[2].epoch and book.book == inst.service.streams[PAIR].book
    client = redis.Redis.from_url(infra.redis_url)
    try:
        snap = decode_snapshot(client.get(RedisLayout(prefix).snapshot_key(PAIR)))
    finally:
        client.close()
    assert snap.seq == 1 and len(snap.bids) == 3
    assert inst.service.counters.pairs_refused == 1


class Flaky(RedisStore):
    """Redis that can be down for window writes or for snapshot writes, on the test's word."""

    windows_down = snapshots_down = landing = False

    def write_window(self, parts, outputs):
        if self.landing:  # the write reaches Redis, its reply does not
            super().write_window(parts, outputs)
            raise redis.TimeoutError("reply lost")
        if self.windows_down:
            raise redis.ConnectionError("redis is down")
        return super().write_window(parts, outputs)

    def write_snapshots(self, writes):
        if self.snapshots_down:
            raise redis.ConnectionError("redis is down")
        return super().write_snapshots(writes)


def give_up_on_a_window(inst: Instance) -> None:
    """What a stop (or a revoke's deadline) does in a Redis outage: the write is abandoned."""
    assert not inst.service.write_window(check=False, deadline=time.monotonic())


@pytest.mark.parametrize("then", ["more events", "only a check"])
def test_a_write_given_up_on_leaves_no_hole_and_no_state_without_history(
    infra, prefix, channel, then
) -> None:
    inst = Instance(infra, prefix, "a", store_cls=Flaky)
    inst.assign(0)
    inst.events(1)
    inst.window()
    inst.events(2)
    inst.store.windows_down = True
    give_up_on_a_window(inst)  # seq 2 was taken for this window, and never written
    inst.store.windows_down = False
    if then == "more events":
        inst.events(3)
        inst.window()
    else:
        inst.window(check=True)
    deltas = channel()
    stream = inst.service.streams[PAIR]
    assert [(decode_delta(d).epoch, decode_delta(d).seq) for d in deltas] == [
        (stream.epoch, 1),
        (stream.epoch, 2),
    ]
    assert rebuild(PAIR, stream.epoch, deltas).book == stream.book  # seq 2 carries event 2 too
    state, book = stored_book(infra.redis_url, prefix, PAIR)  # the history reaches the stored seq
    assert state.seq == 2 and book.book == stream.book


def test_a_write_given_up_on_that_landed_after_all_continues_in_a_new_epoch(infra, prefix, channel) -> None:
    inst = Instance(infra, prefix, "a", store_cls=Flaky)
    inst.assign(0)
    inst.events(1)
    inst.window()
    epoch = inst.service.streams[PAIR].epoch
    inst.events(2)
    inst.store.landing = True
    give_up_on_a_window(inst)  # Redis holds seq 2 (event 2), md_service does not know it
    inst.store.landing = False
    inst.events(3)
    inst.window()  # seq 2 again, now with events 2 and 3: refused, Redis holds a seq 2 already
    inst.window()  # the new epoch, with the whole book
    published = [(decode_delta(d).epoch, decode_delta(d).seq) for d in channel()]
    stream = inst.service.streams[PAIR]
    assert published == [(epoch, 1), (epoch, 2), (stream.epoch, 1)] and stream.epoch != epoch
    assert len(set(published)) == len(published)  # no seq published twice with other content
    assert stored_book(infra.redis_url, prefix, PAIR)[1].book == stream.book


def test_a_snapshot_is_always_the_book_at_the_seq_it_is_labelled_with(infra, prefix, channel) -> None:
    inst = Instance(infra, prefix, "a", store_cls=Flaky, snapshot_every=1)
    inst.assign(0, 1)
    inst.events(1)
    inst.events(1, pair="ETH-USD", partition=1)
    inst.window()
    inst.events(2)
    inst.store.snapshots_down = True
    assert inst.service.write_window(False, partitions=[0])  # BTC-USD seq 2; its snapshot fails
    inst.store.snapshots_down = False
    inst.events(3)  # BTC-USD's next window is open: its book is past seq 2 now
    inst.events(2, pair="ETH-USD", partition=1)
    assert inst.service.write_window(False, partitions=[1])  # the other slot's turn
    client = redis.Redis.from_url(infra.redis_url)
    try:
        snap = decode_snapshot(client.get(RedisLayout(prefix).snapshot_key(PAIR)))
    finally:
        client.close()
    btc = [d for d in channel() if decode_delta(d).pair == PAIR]
    at_seq = rebuild(PAIR, snap.epoch, [d for d in btc if decode_delta(d).seq <= snap.seq])
    as_stored = LocalBook(PAIR)
    as_stored.load_snapshot(snap)
    assert as_stored.book == at_seq.book  # not the book with event 3 in it
    inst.store.snapshots_down = True
    assert inst.service.write_window(False, partitions=[0])  # seq 3, its snapshot fails again
    state, book = stored_book(infra.redis_url, prefix, PAIR)  # a reader: snapshot, then deltas after it
    assert state.seq == 3 and book.book == inst.service.streams[PAIR].book


def copy_of_redis(infra, prefix: str) -> dict[bytes, bytes]:
    client = redis.Redis.from_url(infra.redis_url)
    try:
        return {key: client.dump(key) for key in client.keys(f"{prefix}:*")}
    finally:
        client.close()


def roll_back(infra, prefix: str, saved: dict[bytes, bytes]) -> None:
    """Redis as it was when ``saved`` was taken: a lagging replica promoted, an older RDB loaded."""
    client = redis.Redis.from_url(infra.redis_url)
    try:
        client.delete(*client.keys(f"{prefix}:*"))
        for key, value in saved.items():
            client.restore(key, 0, value, replace=True)
    finally:
        client.close()


def test_a_redis_that_lost_confirmed_writes_is_noticed_after_a_restart(
    infra, prefix, channel, tmp_path
) -> None:
    inst = Instance(infra, prefix, "a", state_dir=str(tmp_path))
    inst.assign(0)
    inst.events(1, 2)
    inst.window()
    saved = copy_of_redis(infra, prefix)
    inst.events(3)
    inst.window()  # seqs 2 and 3 reach every subscriber ...
    inst.events(4)
    inst.window()
    epoch = inst.service.streams[PAIR].epoch
    roll_back(infra, prefix, saved)  # ... and then Redis loses them; md_service restarts too
    again = Instance(infra, prefix, "b", state_dir=str(tmp_path))
    assert again.assign(0) == {0: 2}  # reading resumes where what Redis still holds ends
    again.events(3, 4)
    again.window()
    stream = again.service.streams[PAIR]
    published = [(decode_delta(d).epoch, decode_delta(d).seq) for d in channel()]
    # not (epoch, 2) again with other content: a new epoch, whole book first
    assert published == [(epoch, 1), (epoch, 2), (epoch, 3), (stream.epoch, 1)] and stream.epoch != epoch
    state, book = stored_book(infra.redis_url, prefix, PAIR)
    assert state.epoch == stream.epoch and book.book == stream.book and book.book.depth("b") == 4
    assert again.service.counters.writes_lost == 1


def test_a_restart_without_lost_writes_continues_the_epoch(infra, prefix, channel, tmp_path) -> None:
    inst = Instance(infra, prefix, "a", state_dir=str(tmp_path))
    inst.assign(0)
    inst.events(1, 2)
    inst.window()
    inst.window(check=True)  # a state-only write counts as a write too
    epoch = inst.service.streams[PAIR].epoch
    again = Instance(infra, prefix, "b", state_dir=str(tmp_path))
    assert again.assign(0) == {0: 2}
    again.events(3)
    again.window()
    assert [(decode_delta(d).epoch, decode_delta(d).seq) for d in channel()] == [(epoch, 1), (epoch, 2)]
    assert again.service.counters.writes_lost == 0 and again.service.counters.epochs_started == 0
