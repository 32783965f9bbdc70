"""md_service's Lua scripts on a real Redis and on a real Redis Cluster: claims, fencing,
compare-and-set, offsets.

Every test runs against both (the ``target`` fixture): the window writer is one
implementation, :class:`md_service.redis_store.RedisStore`, on a single server's client or
a cluster's, and this is its contract. A subscriber proves what was (not) published: after
the writes under test the test publishes a sentinel on the same channel, and Pub/Sub
delivers in order, so everything received before the sentinel is everything the writes
published.
"""

from __future__ import annotations

import time

import pytest
from redis.cluster import RedisCluster

from md_service.pair_stream import PairStream
from md_service.redis_store import RedisStore
from md_service.window_script import PartitionWrite, SnapshotWrite
from mdcore.codec import decode_delta
from mdcore.redis_layout import RedisLayout
from tests.integration.stack_helpers import unique

pytestmark = pytest.mark.integration

PARTITIONS = 2  # BTC-USD and DOT-USD live in partition 0, ETH-USD and SOL-USD in 1
PAIR, OTHER = "BTC-USD", "DOT-USD"
SENTINEL = b"--sentinel--"


@pytest.fixture
def prefix() -> str:
    return unique("mdstore")


@pytest.fixture(params=["redis", "cluster"])
def target(request: pytest.FixtureRequest) -> tuple[str, tuple[str, ...]]:
    """(REDIS_URL, REDIS_CLUSTER seeds): one Valkey, or a 3-primary Valkey cluster."""
    if request.param == "redis":
        return request.getfixturevalue("infra").redis_url, ()
    cluster = request.getfixturevalue("redis_cluster")
    return cluster.url, tuple(cluster.seeds.split(","))


@pytest.fixture
def store(target, prefix):
    url, seeds = target
    s = RedisStore(url, RedisLayout(prefix, PARTITIONS), "events", history=50, cluster=seeds)
    yield s
    s.close()


def stored_book(store: RedisStore, pair: str):
    """What a reader rebuilds from the pair's stored keys: (state, book) or None."""
    state, local = store.load(pair)
    return None if state is None or local is None else (state, local)


@pytest.fixture
def published(store, prefix):
    """published() -> every message on the pairs' delta channels since the fixture started."""
    client = store.client
    sharded = isinstance(client, RedisCluster)
    pubsub = client.pubsub()
    layout = RedisLayout(prefix, PARTITIONS)
    pubsub.ssubscribe(*(layout.delta_channel(p) for p in (PAIR, OTHER, "ETH-USD", "SOL-USD")))
    read = pubsub.get_sharded_message if sharded else pubsub.get_message

    def collect() -> list[bytes]:
        client.spublish(layout.delta_channel(PAIR), SENTINEL)
        out = []
        deadline = time.monotonic() + 5.0
        while True:
            msg = read(timeout=0.5)  # None: nothing yet
            assert msg is not None or time.monotonic() < deadline, "the sentinel never came back"
            if msg is None or msg["type"] != "smessage":
                continue  # (subscribe confirmations)
            if msg["data"] == SENTINEL:
                return out
            out.append(msg["data"])

    yield collect
    pubsub.close()


def step(stream: PairStream, xseq: int, price: int, qty: int, check: bool = False):
    if xseq:
        stream.apply(xseq, xseq, [("b", price, qty)])
    return stream.close_window(xseq or 1, 10, check)


def test_a_window_is_written_whole_with_the_offset(store, prefix, published) -> None:
    claim = store.claim("me/1", [0])
    assert claim.offsets == {0: None} and claim.pairs == {}
    stream = PairStream(PAIR, "e1", partition=0)
    out = step(stream, 1, 100, 5)
    result = store.write_window([PartitionWrite(0, "me/1", 17)], [out])
    assert result.clean
    assert published() == [out.delta]
    state, book = stored_book(store, PAIR)
    assert (state.epoch, state.seq, state.xseq, state.snap_seq) == ("e1", 1, 1, 1)
    assert book.book == stream.book
    again = store.claim("next/2", [0])  # the next owner learns where to start and what lives there
    assert again.offsets == {0: 17} and again.pairs == {PAIR: 0}


def test_a_zombie_writes_nothing_once_another_instance_claimed(store, prefix, published) -> None:
    store.claim("a/1", [0])
    zombie = PairStream(PAIR, "e1", partition=0)
    first = step(zombie, 1, 100, 5)
    assert store.write_window([PartitionWrite(0, "a/1", 1)], [first]).clean
    zombie.confirm(first)
    before = published()

    store.claim("b/2", [0])  # the group gave partition 0 to b; a has not noticed yet
    late = step(zombie, 2, 100, 6)
    result = store.write_window([PartitionWrite(0, "a/1", 2)], [late])
    assert result.lost == {0: "b/2"} and not result.refused
    assert before == [first.delta] and published() == []  # nothing reached a subscriber
    state, _ = stored_book(store, PAIR)
    assert (state.seq, state.xseq) == (1, 1)
    assert store.claim("c/3", [0]).offsets == {0: 1}  # the zombie's offset was not stored either


def test_a_wrong_expectation_refuses_only_that_pair_and_holds_the_offset(store, prefix, published) -> None:
    store.claim("me/1", [0, 1])
    a, b, c = (
        PairStream(PAIR, "e1", partition=0),
        PairStream(OTHER, "e2", partition=0),
        PairStream("SOL-USD", "e3", partition=1),
    )
    outs = [step(s, 1, 100, 1) for s in (a, b, c)]
    assert store.write_window([PartitionWrite(0, "me/1", 3), PartitionWrite(1, "me/1", 1)], outs).clean
    published()
    for s, o in zip((a, b, c), outs, strict=True):
        s.confirm(o)
    a.stored = ("e1", 7)  # as if Redis had lost writes: what we expect is not what it holds
    outs = [step(s, 2, 100, 2) for s in (a, b, c)]
    result = store.write_window([PartitionWrite(0, "me/1", 6), PartitionWrite(1, "me/1", 2)], outs)
    assert result.refused == {PAIR: ("e1", 1)} and not result.lost
    assert [decode_delta(d).pair for d in published()] == [OTHER, "SOL-USD"]
    # Partition 0's offset stays where it was: BTC-USD's events after it are not in Redis.
    assert store.claim("me/2", [0, 1]).offsets == {0: 3, 1: 2}


def test_a_new_epoch_replaces_a_stored_stream_and_its_history(store, prefix) -> None:
    store.claim("me/1", [0])
    stream = PairStream(PAIR, "old", partition=0)
    for xseq in range(1, 4):
        out = step(stream, xseq, 100 + xseq, 1)
        assert store.write_window([PartitionWrite(0, "me/1", xseq)], [out]).clean
        stream.confirm(out)
    stream.restart_epoch("new", replacing=("old", 3))
    out = stream.close_window(9, 10)
    assert store.write_window([PartitionWrite(0, "me/1", 4)], [out]).clean
    state, book = stored_book(store, PAIR)
    assert (state.epoch, state.seq) == ("new", 1) and book.book == stream.book
    ids = [entry_id for entry_id, _ in store.client.xrange(RedisLayout(prefix, PARTITIONS).history_key(PAIR))]
    assert ids == [b"1-0"]  # the old epoch's deltas are gone: they belong to another stream


def test_a_state_only_write_moves_the_xseq_and_publishes_nothing(store, prefix, published) -> None:
    store.claim("me/1", [0])
    stream = PairStream(PAIR, "e1", partition=0)
    out = step(stream, 1, 100, 5)
    store.write_window([PartitionWrite(0, "me/1", 1)], [out])
    stream.confirm(out)
    published()
    stream.apply(2, 2, [("b", 200, 1), ("b", 200, 0)])  # nets to nothing
    out = stream.close_window(2, 10)
    assert out is not None and out.delta == b""
    assert store.write_window([PartitionWrite(0, "me/1", 2)], [out]).clean
    assert published() == []
    state, _ = stored_book(store, PAIR)
    assert (state.seq, state.xseq) == (1, 2)


def test_reclaiming_takes_only_a_partition_nobody_owns(store, prefix) -> None:
    store.claim("me/1", [0, 1])
    store.client.hdel(store.md_key(1), "owner:1")  # as if Redis had lost it
    claim = store.claim("other/2", [0, 1], force=False)
    assert list(claim.offsets) == [1]
    assert store.write_window(
        [PartitionWrite(0, "me/1", None), PartitionWrite(1, "me/1", None)], []
    ).lost == {1: "other/2"}


def test_a_periodic_snapshot_is_stored_only_for_the_position_it_describes(store, prefix) -> None:
    store.claim("me/1", [0])
    stream = PairStream(PAIR, "e1", partition=0)
    for xseq in range(1, 4):
        out = step(stream, xseq, 100 + xseq, 1)
        assert store.write_window([PartitionWrite(0, "me/1", xseq)], [out]).clean
        stream.confirm(out)
    stream.snap_due = True
    snap = stream.due_snapshot(now_ns=9)
    assert snap is not None
    late = SnapshotWrite(PAIR, 0, "me/1", "e1", 2, snap)  # Redis is at seq 3 by now: refused
    assert store.write_snapshots([late]) == set()
    assert store.write_snapshots([SnapshotWrite(PAIR, 0, "other/2", "e1", 3, snap)]) == set()  # not ours
    assert store.write_snapshots([SnapshotWrite(PAIR, 0, "me/1", "e1", 3, snap)]) == {PAIR}
    state, book = stored_book(store, PAIR)
    assert (state.seq, state.snap_seq) == (3, 3) and book.book == stream.book


def test_every_write_counts_per_owned_partition_and_a_claim_reads_the_counts(store, prefix) -> None:
    first = store.claim("a/1", [0, 1])
    assert first.writes == {0: 0, 1: 0} and [len(d) for d in first.datasets.values()] == [16, 16]
    a, b = PairStream(PAIR, "e1", partition=0), PairStream("ETH-USD", "e2", partition=1)
    out = step(a, 1, 100, 5)
    result = store.write_window([PartitionWrite(0, "a/1", 1)], [out])
    assert result.writes == {0: 1}  # only the partitions in the write
    a.confirm(out)
    outs = [step(a, 2, 100, 6), step(b, 1, 100, 1)]
    assert store.write_window([PartitionWrite(0, "a/1", 2), PartitionWrite(1, "a/1", 1)], outs).writes == {
        0: 2, 1: 1,
    }  # fmt: skip
    store.claim("b/2", [1])
    zombie = store.write_window([PartitionWrite(0, "a/1", None), PartitionWrite(1, "a/1", None)], [])
    assert zombie.lost == {1: "b/2"} and zombie.writes == {0: 3}  # a fenced write counts nothing
    again = store.claim("c/3", [0, 1])
    assert again.writes == {0: 3, 1: 1} and again.datasets == first.datasets  # each keeps its id


def test_a_writer_beats_while_it_owns_and_learns_at_once_when_it_does_not(store) -> None:
    store.claim("a/1", [0, 1])
    first = store.watch([0, 1])
    assert {p: v.owner for p, v in first.items()} == {0: "a/1", 1: "a/1"}
    assert all(v.beat_ms is not None and 0 <= v.now_ms - v.beat_ms < 1000 for v in first.values())
    store.claim("b/2", [1])
    assert store.beat({0: "a/1", 1: "a/1"}) == {1: "b/2"}  # fenced on 1, still beating 0
    assert store.claimed_partitions() == [0, 1]  # those a writer can be gone from
    never = store.watch([2])[2]
    assert (never.owner, never.beat_ms) == ("", None)


def test_a_takeover_needs_the_owner_seen_and_a_release_or_an_old_beat(store) -> None:
    store.claim("a/1", [0, 1, 2])
    # a fresh beat: nobody takes over, whatever they saw
    assert store.take_over("s/1", {0: "a/1", 1: "a/1"}, dead_after_ms=5000).offsets == {}
    assert store.release({0: "a/1", 1: "x/9"}) == [0]  # only what it still owns
    assert store.watch([0])[0].owner == "released/a/1"
    assert store.write_window([PartitionWrite(0, "a/1", 5)], []).lost == {0: "released/a/1"}
    store.client.hset(store.md_key(1), "beat:1", 1)  # a/1 beat last at the epoch: long dead
    wrong = store.take_over("s/1", {0: "a/1", 1: "zz/1"}, dead_after_ms=5000)  # saw other owners
    assert wrong.offsets == {}
    taken = store.take_over("s/1", {0: "released/a/1", 1: "a/1", 2: "a/1"}, dead_after_ms=5000)
    assert sorted(taken.offsets) == [0, 1] and taken.previous == {0: "released/a/1", 1: "a/1"}
    assert store.take_over("s/2", {0: "released/a/1"}, dead_after_ms=0).offsets == {}  # one winner
    assert store.beat({0: "s/1", 1: "s/1"}) == {}
    assert store.take_over("s/2", {5: ""}, dead_after_ms=0).offsets == {}  # nobody owns 5: never


def test_a_follow_point_reads_offsets_pairs_and_books_together(store, prefix) -> None:
    store.claim("me/1", [0, 1])
    a, b = PairStream(PAIR, "e1", partition=0), PairStream("ETH-USD", "e2", partition=1)
    outs = [step(a, 1, 100, 5), step(b, 1, 100, 1)]
    assert store.write_window([PartitionWrite(0, "me/1", 7), PartitionWrite(1, "me/1", 3)], outs).clean
    claim, books = store.follow_point([0])
    assert claim.offsets == {0: 7} and claim.pairs == {PAIR: 0} and set(books) == {PAIR}
    state, local = books[PAIR]
    assert (state.epoch, state.seq, state.xseq) == ("e1", 1, 1) and local.book == a.book
    assert store.watch([0])[0].owner == "me/1"  # reading where to follow claims nothing
