"""md_service.window_writes: what the service does with each window's outputs and Redis' answer.

The real service on the scripted store and source of :mod:`tests.unit.md_service.md_fakes`:
the store's answer to each write is the test's (a refused pair, a lost partition, a cluster
node down). The same paths against a real Redis are ``tests/integration/test_md_service_redis.py``'s.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from md_service.claim_script import Claim
from md_service.config import MdConfig
from md_service.pair_stream import PairStream, WindowOutput
from md_service.service import MdService
from md_service.window_script import PartitionWrite, WindowResult
from mdcore.messages import StreamPosition
from tests.unit.md_service.md_fakes import ScriptedSource, ScriptedStore

CFG = MdConfig("", "", instance="md-test")
NOW_NS = 1_700_000_000_000_000_000
TOKEN = "md-test/aaaaaaaa"


def make(store: ScriptedStore | None = None, source: ScriptedSource | None = None) -> MdService:
    scripted = source or ScriptedSource()
    return MdService(
        CFG, store or ScriptedStore(), lambda on_assign, on_revoke: scripted, clock_ns=lambda: NOW_NS
    )


def changed(service: MdService, pair: str, partition: int, price: int = 100_00) -> PairStream:
    """A stream Redis holds at e1/0 with one change in its open window."""
    stream = service.streams.get(pair)
    if stream is None:
        stream = PairStream(pair, "e1", stored=StreamPosition("e1", 0), partition=partition)
        service.ownership.add_stream(stream)
    stream.apply(stream.xseq + 1, 1_000, [("b", price, 5)])
    return stream


def test_only_the_owned_partitions_not_followed_close_their_windows() -> None:
    service = make()
    service.ownership.own([0, 1], TOKEN)
    service.ownership.follow(2, 0)
    for pair, p in (("BTC-USD", 0), ("ETH-USD", 1), ("SOL-USD", 2)):
        changed(service, pair, p)
    assert [o.pair for o in service.windows.close_windows(False, [1, 2, 7])] == ["ETH-USD"]
    again = {o.pair: o for o in service.windows.close_windows(False)}
    assert set(again) == {"BTC-USD", "ETH-USD"} and again["BTC-USD"].delta
    assert again["ETH-USD"].delta == b""  # closed already: only its unconfirmed xseq, state-only


def test_nothing_to_write_asks_nothing_of_redis() -> None:
    store = ScriptedStore()
    service = make(store)
    service.ownership.own([0], TOKEN)
    assert service.write_window(check=False) and store.windows == []


def test_a_refused_pair_continues_in_a_new_epoch_replacing_what_redis_holds() -> None:
    store = ScriptedStore([WindowResult({}, {"BTC-USD": StreamPosition("e0", 9)}, {0: 1})])
    source = ScriptedSource()
    service = make(store, source)
    service.ownership.own([0], TOKEN)
    service.ownership.partitions[0].position = 42
    stream = changed(service, "BTC-USD", 0)
    assert service.write_window(check=False)
    assert stream.epoch != "e1" and stream.stored == StreamPosition("e0", 9) and stream.full_next
    c = service.counters
    assert (c.pairs_refused, c.epochs_started, c.deltas) == (1, 1, 0)
    assert source.committed == [{}]  # the partition's offset is not stored past a refused pair


def test_a_refusal_at_exactly_our_write_is_a_landed_retry_not_a_loss() -> None:
    # the stream's first close is seq 1: Redis already holds e1/1, from an attempt whose reply was lost
    store = ScriptedStore([WindowResult({}, {"BTC-USD": StreamPosition("e1", 1)}, {0: 1})])
    service = make(store)
    service.ownership.own([0], TOKEN)
    stream = changed(service, "BTC-USD", 0)
    assert service.write_window(check=False)
    assert stream.stored == StreamPosition("e1", 1) and stream.epoch == "e1"
    assert (service.counters.deltas, service.counters.pairs_refused) == (1, 0)


def test_the_same_refusal_after_a_write_given_up_on_is_a_loss() -> None:
    store = ScriptedStore([WindowResult({}, {"BTC-USD": StreamPosition("e1", 1)}, {0: 1})])
    service = make(store)
    service.ownership.own([0], TOKEN)
    stream = changed(service, "BTC-USD", 0)
    stream.unsure = StreamPosition("e1", 1)  # a write of e1/1 was given up on: other content may be there
    assert service.write_window(check=False)
    assert stream.epoch != "e1" and service.counters.pairs_refused == 1


def test_a_partition_redis_lost_the_owner_of_is_claimed_again_and_its_pairs_start_new_epochs() -> None:
    claim = Claim({0: None}, {}, {0: "new-dataset"}, {0: 0}, {0: ""})
    store = ScriptedStore([WindowResult({0: ""}, {}, {})], claims=[claim])
    service = make(store)
    service.ownership.own([0], TOKEN)
    stream = changed(service, "BTC-USD", 0)
    assert service.write_window(check=False)
    assert store.claimed == [(TOKEN, [0], False)]  # only if still free: two re-claimers cannot both win
    assert service.datasets == {0: "new-dataset"} and stream.epoch != "e1" and stream.full_next
    assert service.counters.epochs_started == 1 and service.counters.partitions_lost == 0


def test_a_partition_another_instance_owns_is_fenced_while_assigned_and_forgotten_if_not() -> None:
    store = ScriptedStore([WindowResult({0: "md-other/1", 1: "md-other/1"}, {}, {})])
    source = ScriptedSource()
    service = make(store, source)
    service.ownership.own([0], TOKEN, assigned=True)
    service.ownership.own([1], TOKEN, assigned=False)
    changed(service, "BTC-USD", 0)
    changed(service, "ETH-USD", 1)
    assert service.write_window(check=False)
    assert service.ownership.fenced_numbers() == [0]  # kept, followed warm in case it comes back
    assert 1 not in service.ownership.partitions and source.unfetched == [1]
    assert service.counters.partitions_lost == 2 and source.committed == [{}]


def test_a_partition_on_a_node_down_waits_while_the_others_are_written() -> None:
    store = ScriptedStore([WindowResult({}, {}, {0: 1}, {1})])
    source = ScriptedSource()
    service = make(store, source)
    service.ownership.own([0, 1], TOKEN)
    service.ownership.partitions[0].position = 10
    service.ownership.partitions[1].position = 20
    btc, eth = changed(service, "BTC-USD", 0), changed(service, "ETH-USD", 1)
    assert service.write_window(check=False)
    assert btc.stored == StreamPosition("e1", 1)
    assert eth.stored == StreamPosition("e1", 0) and eth.seq == 0 and not eth.window.is_empty()  # taken back
    assert source.committed == [{0: 10}]
    c = service.counters
    assert (c.partition_writes_failed, c.redis_errors, c.deltas) == (1, 1, 1)
    assert store.results == [] and service.write_window(check=False)  # the next window carries it
    assert eth.stored == StreamPosition("e1", 1) and store.windows[-1] == ([1], ["ETH-USD"])


def test_a_write_given_up_on_frees_its_seqs_and_marks_what_may_have_landed() -> None:
    class Down(ScriptedStore):
        def write_window(
            self, parts: Sequence[PartitionWrite], outputs: Sequence[WindowOutput]
        ) -> WindowResult:
            self.windows.append(([p.partition for p in parts], [o.pair for o in outputs]))
            service.stop()  # stopped while Redis is down: the retry gives up
            raise redis.ConnectionError("connection refused")

    service = make(Down())
    service.ownership.own([0], TOKEN)
    stream = changed(service, "BTC-USD", 0)
    assert not service.write_window(check=False)
    assert stream.seq == 0 and not stream.window.is_empty() and stream.unsure == StreamPosition("e1", 1)
    assert service.counters.windows == 0 and service.counters.redis_errors == 1


def test_a_failed_snapshot_is_counted_and_due_again() -> None:
    store = ScriptedStore()
    store.snapshot_error = redis.ConnectionError("gone")
    service = make(store)
    service.ownership.own([0], TOKEN)
    stream = changed(service, "BTC-USD", 0)
    stream.snap_seq = 0  # a snapshot is stored already: the first delta carries none
    stream.snap_due = True
    stream.phase = 0
    assert service.write_window(check=False)
    assert stream.snap_due and service.counters.snapshots == 0 and service.counters.redis_errors == 1
    store.snapshot_error = None
    changed(service, "BTC-USD", 0, price=101_00)
    stream.snap_due = True
    assert service.write_window(check=False)
    assert not stream.snap_due and stream.snap_seq == 2 and service.counters.snapshots == 1
