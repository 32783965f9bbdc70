"""The pacing arithmetic and the pair pickers of the run loop."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feed_simulator.pacing import RoundRobin, events_due, next_due


def test_the_first_event_is_due_at_once():
    assert events_due(200.0, 0.0, 0) == 1
    assert events_due(200.0, 0.0, 1) == 0


def test_events_due_catches_up_with_the_schedule():
    assert events_due(100.0, 0.5, 0) == 51  # events 0..50 are due at 0.00 .. 0.50 s
    assert events_due(100.0, 0.5, 40) == 11
    assert events_due(100.0, 0.5, 51) == 0
    assert events_due(100.0, 0.5, 80) == 0  # ahead of the schedule: never negative


def test_nothing_is_due_before_the_start():
    assert events_due(100.0, -1.0, 0) == 0


def test_next_due_is_the_inverse_of_events_due():
    rate = 250.0
    for sent in range(1, 100):
        at = next_due(rate, sent)
        assert events_due(rate, at + 1e-9, sent) >= 1
        assert events_due(rate, at - 1e-6, sent) == 0


@given(
    rate=st.floats(0.5, 1e6),
    wakeups=st.lists(st.floats(0.0, 0.05), min_size=1, max_size=200),
)
def test_irregular_wakeups_never_drift(rate, wakeups):
    """However late the loop wakes up, after time t exactly floor(rate*t)+1 events went out."""
    t, sent = 0.0, 0
    for gap in wakeups:
        t += gap
        sent += events_due(rate, t, sent)
    assert sent == math.floor(rate * t) + 1


def test_round_robin_visits_every_pair_in_turn():
    picker = RoundRobin(3)
    assert [picker.next_index() for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    assert RoundRobin(1).next_index() == 0
    with pytest.raises(ValueError):
        RoundRobin(0)
