"""Ownership: which partitions a window write names, and what Redis stored for them."""

from __future__ import annotations

from md_service.ownership import Ownership
from md_service.pair_stream import PairStream, WindowOutput
from md_service.window_script import PartitionWrite


def output(partition: int) -> WindowOutput:
    return WindowOutput("BTC-USD", partition, "e", 1, 1, b"d", None, None)


def test_a_write_names_partitions_with_output_or_a_new_position() -> None:
    own = Ownership()
    own.own([0, 1, 2, 3], "tok")
    own.partitions[1].position = 10
    own.partitions[2].position = 20
    own.partitions[2].written = 20  # nothing new since the last write
    assert own.writes_for([output(3)], every=False) == [
        PartitionWrite(1, "tok", 10),
        PartitionWrite(3, "tok", None),
    ]
    # A check names every partition, so a lost owner token is noticed even when all is quiet.
    assert [w.partition for w in own.writes_for([], every=True)] == [0, 1, 2, 3]


def test_only_offsets_of_clean_partitions_count_as_stored() -> None:
    own = Ownership()
    own.own([0, 1], "tok")
    writes = [PartitionWrite(0, "tok", 5), PartitionWrite(1, "tok", 7)]
    assert own.accepted(writes, refused_partitions={1}) == {0: 5}
    assert own.partitions[0].written == 5 and own.partitions[1].written is None


def test_a_fenced_partition_keeps_its_books_warm_and_is_never_written() -> None:
    own = Ownership()
    own.own([0, 1], "tok")
    own.add_stream(PairStream("BTC-USD", "e", partition=0))
    own.add_stream(PairStream("ETH-USD", "e", partition=1))
    own.partitions[0].position = 3
    own.mark_fenced(0)
    assert set(own.streams) == {"BTC-USD", "ETH-USD"}  # still read and applied: a warm follower
    assert own.fenced_numbers() == own.following_numbers() == [0] and own.owned_numbers() == [1]
    assert [w.partition for w in own.writes_for([], every=True)] == [1]
    assert own.tokens() == {1: "tok"}  # only what we write beats and is released
    own.own([0], "tok2")  # a later assignment gives it back: owned afresh
    assert own.owned_numbers() == [0, 1] and own.partitions[0].token == "tok2"
    assert set(own.streams) == {"ETH-USD"}  # its streams are restored from Redis next


def test_a_followed_partition_starts_where_it_is_read_from() -> None:
    own = Ownership()
    part = own.follow(2, position=40)
    assert part.following and not part.fenced and part.position == 40 and part.token == ""
    assert own.following_numbers() == [2] and own.fenced_numbers() == [] and own.tokens() == {}


def test_a_slot_writes_only_its_own_partitions() -> None:
    own = Ownership()
    own.own([0, 1, 2, 3], "tok")
    for part in own.partitions.values():
        part.position = 9
    assert [w.partition for w in own.writes_for([output(2)], every=True, among=[1, 3])] == [1, 3]
