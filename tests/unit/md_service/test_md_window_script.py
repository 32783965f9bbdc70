"""md_service.window_script's pure parts: each partition's KEYS and ARGV, the replies, results merged.

The Lua (WRITE_WINDOW_LUA, WRITE_SNAPSHOTS_LUA) runs in Redis: ``tests/integration/test_md_store.py``
covers it on one server and on a cluster (``test_a_window_is_written_whole_with_the_offset``,
``test_a_zombie_writes_nothing_once_another_instance_claimed``,
``test_a_wrong_expectation_refuses_only_that_pair_and_holds_the_offset``,
``test_a_state_only_write_moves_the_xseq_and_publishes_nothing``,
``test_a_periodic_snapshot_is_stored_only_for_the_position_it_describes``), and
``tests/integration/test_md_service_redis.py`` through the real service.
"""

from __future__ import annotations

import pytest

from md_service.pair_stream import WindowOutput
from md_service.window_script import (
    PartitionWrite,
    SnapshotWrite,
    WindowResult,
    merge_results,
    parse_result,
    snapshot_script_args,
    window_script_args,
)
from mdcore.messages import StreamPosition
from mdcore.redis_layout import RedisLayout

LAYOUT = RedisLayout("bc", 8)
PAIRS = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD", "DOGE-USD"]
P = LAYOUT.partition("BTC-USD")
OTHER = next(pair for pair in PAIRS if LAYOUT.partition(pair) != P)  # a pair of another partition


def out(pair: str = "BTC-USD", partition: int = P, **changes: object) -> WindowOutput:
    fields: dict = dict(
        epoch="e2", seq=8, xseq=120, delta=b"D", snapshot=None, expect=StreamPosition("e2", 7)
    )
    fields.update(changes)
    return WindowOutput(pair, partition, **fields)


def test_a_partitions_window_keys_start_with_its_hash_then_three_per_pair() -> None:
    keys, argv = window_script_args(LAYOUT, "events", PartitionWrite(P, "md-a/1", 41), [out()], history=50)
    assert keys == [
        f"bc:{{p{P}}}:md:events", f"bc:{{p{P}}}:pairs",
        f"bc:{{p{P}}}:state:BTC-USD", f"bc:{{p{P}}}:hist:BTC-USD", f"bc:{{p{P}}}:snap:BTC-USD",
    ]  # fmt: skip
    assert argv == [
        50,
        P,
        "md-a/1",
        41,
        "BTC-USD",
        f"bc:{{p{P}}}:delta:BTC-USD",
        "e2",
        8,
        120,
        b"D",
        b"",
        "e2",
        7,
    ]
    assert all(f"{{p{P}}}" in key for key in keys)  # one hash slot: one atomic script on a cluster


def test_no_offset_to_store_and_no_stored_state_are_empty_strings() -> None:
    _, argv = window_script_args(
        LAYOUT, "events", PartitionWrite(P, "md-a/1", None), [out(expect=None, snapshot=b"S", delta=b"")], 50
    )
    assert argv[3] == "" and argv[-4:] == [b"", b"S", "", 0]


def test_an_output_of_another_partition_or_a_pair_living_elsewhere_is_a_bug() -> None:
    with pytest.raises(ValueError, match="output is of partition"):
        window_script_args(LAYOUT, "events", PartitionWrite(P, "t", 1), [out(partition=P + 1)], 50)
    with pytest.raises(ValueError, match="lives in partition"):
        window_script_args(LAYOUT, "events", PartitionWrite(P, "t", 1), [out(OTHER, P)], 50)


def test_snapshot_args_are_checked_and_fenced_by_the_partitions_token() -> None:
    w = SnapshotWrite("BTC-USD", P, "md-a/1", "e2", 8, b"SNAP")
    keys, argv = snapshot_script_args(LAYOUT, "events", P, "md-a/1", [w])
    assert keys == [
        f"bc:{{p{P}}}:md:events",
        f"bc:{{p{P}}}:pairs",
        f"bc:{{p{P}}}:state:BTC-USD",
        f"bc:{{p{P}}}:snap:BTC-USD",
    ]
    assert argv == [P, "md-a/1", "BTC-USD", "e2", 8, b"SNAP"]
    with pytest.raises(ValueError, match="lives in partition"):
        snapshot_script_args(LAYOUT, "events", P, "md-a/1", [SnapshotWrite(OTHER, P, "md-a/1", "e2", 8, b"")])


def test_a_reply_names_the_lost_partition_the_refused_pairs_and_the_write_counter() -> None:
    result = parse_result(
        [[b"3", b"md-b/9"], [b"BTC-USD", b"e1", b"12", b"ETH-USD", b"", b""], [b"4", b"17"]]
    )
    assert result.lost == {3: "md-b/9"}
    assert result.refused == {"BTC-USD": StreamPosition("e1", 12), "ETH-USD": None}  # None: no state at all
    assert result.writes == {4: 17} and result.failed == set() and not result.clean
    assert parse_result([[], [], [b"4", b"18"]]).clean


def test_merged_results_keep_every_partitions_outcome() -> None:
    merged = merge_results(
        [
            WindowResult({}, {}, {0: 5}),
            WindowResult({1: ""}, {}, {}),
            WindowResult({}, {"BTC-USD": None}, {2: 1}),
            WindowResult({}, {}, {}, {3}),
        ]
    )
    assert merged == WindowResult({1: ""}, {"BTC-USD": None}, {0: 5, 2: 1}, {3})
    assert not WindowResult({}, {}, {}, {3}).clean  # a partition not written is not clean
    assert merge_results([]).clean
