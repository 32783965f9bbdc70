"""The takeover decision: when a follower or an adopter may take a partition from its writer.

A fake clock for our side; Redis' clock comes in each reading, as WATCH_LUA returns it.
"""

from __future__ import annotations

from md_service.takeover import OwnerView, TakeoverWatch, is_released, released_marker


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_writer_that_keeps_beating_is_never_taken_over() -> None:
    clock = Clock()
    watch = TakeoverWatch(0.5, clock=clock)
    for i in range(50):  # 5 s of readings, the beat always 100 ms old at most
        clock.t += 0.1
        redis_now = 1_000_000 + i * 100
        assert not watch.due(0, OwnerView("md-a/1", redis_now - 100, redis_now))


def test_a_writer_whose_beat_is_old_on_redis_clock_is_gone() -> None:
    watch = TakeoverWatch(0.5, clock=Clock())
    assert not watch.due(0, OwnerView("md-a/1", 1_000_000, 1_000_499))
    assert watch.due(0, OwnerView("md-a/1", 1_000_000, 1_000_500))  # 500 ms without a beat


def test_the_age_is_redis_clock_not_ours() -> None:
    """Our clock standing still (or running fast) does not matter: Redis' clock says how old a beat is."""
    clock = Clock()
    watch = TakeoverWatch(0.5, clock=clock)
    assert watch.due(0, OwnerView("md-a/1", 1_000_000, 1_000_900))  # first reading: already 900 ms old
    clock.t += 3600  # an hour on our clock, a fresh beat on Redis' clock
    assert not watch.due(0, OwnerView("md-a/1", 2_000_000, 2_000_050))


def test_a_release_is_taken_at_once_by_a_warm_follower_after_a_grace_by_an_adopter() -> None:
    clock = Clock()
    warm, cold = TakeoverWatch(0.5, clock=clock), TakeoverWatch(1.5, release_grace_s=0.2, clock=clock)
    view = OwnerView(released_marker("md-a/1"), 1_000_000, 1_000_010)  # the beat is fresh: no matter
    assert is_released(view.owner) and not is_released("md-a/1")
    assert warm.due(0, view)
    assert not cold.due(0, view)
    clock.t += 0.15
    assert not cold.due(0, view)
    clock.t += 0.05
    assert cold.due(0, view)


def test_a_new_owner_restarts_the_grace() -> None:
    clock = Clock()
    cold = TakeoverWatch(1.5, release_grace_s=0.2, clock=clock)
    assert not cold.due(0, OwnerView(released_marker("md-a/1"), 5, 10))
    clock.t += 0.3
    assert not cold.due(0, OwnerView(released_marker("md-b/2"), 5, 10))  # released again, by another
    clock.t += 0.2
    assert cold.due(0, OwnerView(released_marker("md-b/2"), 5, 10))


def test_a_writer_that_never_beat_is_timed_on_our_clock_from_when_its_token_was_first_seen() -> None:
    clock = Clock()
    watch = TakeoverWatch(0.5, clock=clock)
    assert not watch.due(0, OwnerView("md-old/1", None, 1))
    clock.t += 0.4
    assert not watch.due(0, OwnerView("md-old/1", None, 2))
    clock.t += 0.1
    assert watch.due(0, OwnerView("md-old/1", None, 3))
    assert not watch.due(0, OwnerView("md-new/2", None, 4))  # another token: the wait starts again


def test_no_owner_at_all_is_never_taken_over() -> None:
    clock = Clock()
    watch = TakeoverWatch(0.5, clock=clock)
    for _ in range(20):
        clock.t += 1
        assert not watch.due(0, OwnerView("", None, 1))


def test_partitions_are_watched_apart_and_can_be_forgotten() -> None:
    clock = Clock()
    watch = TakeoverWatch(0.5, clock=clock)
    assert not watch.due(0, OwnerView("md-old/1", None, 1))
    clock.t += 0.5
    assert not watch.due(1, OwnerView("md-old/1", None, 1))  # first seen now
    assert watch.due(0, OwnerView("md-old/1", None, 1))
    watch.forget(0)
    assert not watch.due(0, OwnerView("md-old/1", None, 1))  # seen afresh
