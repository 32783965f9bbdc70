"""bookcast.cluster_view: CLUSTER NODES as the embedded cluster reads it, on plain strings."""

from __future__ import annotations

import itertools

from bookcast.cluster_view import SLOT_COUNT, even_split, merge_ranges, parse_nodes

NODES = """\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002 master - 0 1700000000000 2 connected 5461-10922 [10923->-c3]
c3 127.0.0.1:7003@17003 master,fail - 1700000000000 1700000000000 3 disconnected 10923-16383
d4 127.0.0.1:7004@17004,host-4 slave a1 0 1700000000000 1 connected
"""


def test_nodes_are_parsed_with_roles_slots_and_health() -> None:
    lines = {line.node_id: line for line in parse_nodes(NODES)}
    assert [lines[n].port for n in ("a1", "b2", "c3", "d4")] == [7001, 7002, 7003, 7004]
    assert lines["a1"].is_primary and lines["a1"].slots == ((0, 5460),) and lines["a1"].healthy
    assert lines["b2"].slots == ((5461, 10922),)  # a migrating [...] entry is not a slot range
    assert not lines["c3"].healthy and not lines["c3"].connected
    assert not lines["d4"].is_primary and lines["d4"].primary_id == "a1" and lines["d4"].bus_port == 17004


def test_a_short_or_blank_line_is_skipped() -> None:
    assert parse_nodes("\ngarbage line\n") == []


def test_slots_split_evenly_and_ranges_of_one_owner_merge() -> None:
    split = even_split(3)
    assert split[0][0] == 0 and split[-1][1] == SLOT_COUNT - 1
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(split))
    assert max(hi - lo for lo, hi in split) - min(hi - lo for lo, hi in split) <= 1
    assert merge_ranges([(6, 9, "x"), (0, 5, "x"), (10, 12, "y")]) == ((0, 9, "x"), (10, 12, "y"))
