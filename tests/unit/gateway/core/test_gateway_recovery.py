"""gateway.core.recovery: what a `since` subscribe is replayed, and when a snapshot is cheaper."""

from __future__ import annotations

from gateway.core.recovery import chunk_frames, plan_replay, replay_costs_more
from mdcore.messages import StreamPosition


def entries(first: int, last: int) -> list[tuple[int, bytes]]:
    return [(s, b"d%d" % s) for s in range(first, last + 1)]


def test_replay_uses_memory_and_history_together_and_refuses_any_hole() -> None:
    head = StreamPosition("e", 10)
    since = StreamPosition("e", 3)
    assert plan_replay(since, head, [entries(6, 10)]) is None  # memory does not reach 4
    assert plan_replay(since, head, [entries(4, 7), entries(6, 10)]) == [b"d%d" % s for s in range(4, 11)]
    assert plan_replay(since, head, [entries(4, 6), entries(8, 10)]) is None  # 7 missing
    assert plan_replay(StreamPosition("other", 3), head, [entries(1, 10)]) is None  # another epoch
    assert plan_replay(StreamPosition("e", 10), head, []) == []  # up to date
    assert plan_replay(StreamPosition("e", 12), head, [], max_ahead=5) == []  # slightly ahead
    assert plan_replay(StreamPosition("e", 20), head, [], max_ahead=5) is None
    assert plan_replay(since, None, [entries(1, 10)]) is None  # nothing to recover from


def test_a_replay_is_read_only_when_it_costs_fewer_bytes_than_a_snapshot() -> None:
    recent = [(s, b"x" * 100) for s in range(1, 6)]  # deltas of 100 bytes
    assert not replay_costs_more(10, recent, 1_000)  # 1,000 bytes: not more than the snapshot
    assert replay_costs_more(11, recent, 1_000)
    assert not replay_costs_more(500, recent, None)  # no snapshot size known yet: try the replay
    assert not replay_costs_more(500, [], 1_000)  # nothing to judge the deltas' size by


def test_replay_runs_are_split_by_size() -> None:
    msgs = [b"x" * 10] * 5
    assert chunk_frames(msgs, 25) == [[msgs[0]] * 2, [msgs[0]] * 2, [msgs[0]]]
    assert chunk_frames([b"y" * 100], 25) == [[b"y" * 100]]
    assert chunk_frames([], 25) == []
