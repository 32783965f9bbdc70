"""gateway.core.recovery: what a `since` subscribe is replayed, and when a snapshot is cheaper."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- plan_replay: edges ---------------------------------------------------------------------


def test_one_delta_behind_is_replayed_alone_and_nothing_outside_the_range_leaks_in() -> None:
    head = StreamPosition("e", 10)
    assert plan_replay(StreamPosition("e", 9), head, [entries(1, 20)]) == [b"d10"]
    assert plan_replay(StreamPosition("e", 0), StreamPosition("e", 1), [entries(1, 1)]) == [b"d1"]


def test_sources_may_be_unordered_one_shot_iterables() -> None:
    shuffled = [(5, b"d5"), (3, b"d3"), (4, b"d4")]
    got = plan_replay(StreamPosition("e", 2), StreamPosition("e", 5), [iter(shuffled)])
    assert got == [b"d3", b"d4", b"d5"]


def test_a_client_ahead_is_accepted_up_to_max_ahead_exactly() -> None:
    head = StreamPosition("e", 10)
    assert plan_replay(StreamPosition("e", 11), head, []) is None  # by default, none ahead
    assert plan_replay(StreamPosition("e", 15), head, [], max_ahead=5) == []
    assert plan_replay(StreamPosition("e", 16), head, [], max_ahead=5) is None
    assert plan_replay(StreamPosition("other", 10), head, [], max_ahead=5) is None  # not the same stream


@settings(max_examples=300)
@given(
    st.integers(0, 30),
    st.integers(0, 30),
    st.sets(st.integers(0, 40)),
    st.sets(st.integers(0, 40)),
)
def test_plan_replay_is_exactly_the_missing_deltas_or_nothing(
    since: int, head: int, memory: set[int], history: set[int]
) -> None:
    """Recovered if and only if every seq after ``since`` up to ``head`` is in some source."""
    sources = [[(s, b"d%d" % s) for s in sorted(memory)], [(s, b"d%d" % s) for s in sorted(history)]]
    got = plan_replay(StreamPosition("e", since), StreamPosition("e", head), sources)
    wanted = range(since + 1, head + 1)
    if since > head:
        assert got is None
    elif set(wanted) <= memory | history:
        assert got == [b"d%d" % s for s in wanted]
    else:
        assert got is None


# --- replay_costs_more: edges ---------------------------------------------------------------


def test_the_deltas_size_is_the_mean_of_the_recent_ones_and_a_tie_replays() -> None:
    recent = [(1, b"x" * 50), (2, b"x" * 150)]  # 100 bytes on average
    assert not replay_costs_more(10, recent, 1_000)  # 1,000 == 1,000: not more
    assert replay_costs_more(10, recent, 999)
    assert not replay_costs_more(0, recent, 0)  # nothing missing costs nothing
    assert replay_costs_more(1, recent, 0)
    assert not replay_costs_more(3, iter(recent), 301)  # any iterable of entries


# --- chunk_frames: edges --------------------------------------------------------------------


def test_each_message_counts_one_byte_more_for_its_separator() -> None:
    msgs = [b"a" * 10, b"b" * 10]
    assert chunk_frames(msgs, 22) == [msgs]  # 11 + 11
    assert chunk_frames(msgs, 21) == [[msgs[0]], [msgs[1]]]


@given(st.lists(st.binary(max_size=30), max_size=30), st.integers(1, 100))
def test_runs_keep_the_order_fill_greedily_and_stay_under_the_limit(msgs: list[bytes], limit: int) -> None:
    runs = chunk_frames(msgs, limit)
    assert [m for run in runs for m in run] == msgs
    assert all(run for run in runs)
    for run in runs:
        assert len(run) == 1 or sum(len(m) + 1 for m in run) <= limit
    for run, after in itertools.pairwise(runs):
        assert sum(len(m) + 1 for m in run) + len(after[0]) + 1 > limit  # the next one did not fit
