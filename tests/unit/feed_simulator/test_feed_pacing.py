"""The pacing arithmetic and the pair pickers of the run loop."""

import math
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feed_simulator.pacing import (
    BurstySchedule,
    RoundRobin,
    SteadySchedule,
    WeightedPicker,
    events_due,
    next_due,
)


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


def test_the_steady_schedule_is_the_plain_arithmetic():
    schedule = SteadySchedule(250.0)
    for t in (0.0, 0.01, 0.5, 3.7):
        assert schedule.due(t) == events_due(250.0, t, 0)
    assert schedule.time_of(17) == next_due(250.0, 17)
    with pytest.raises(ValueError):
        SteadySchedule(0)


def bursty(seed=1, rate=1000.0):
    return BurstySchedule(rate, random.Random(seed))


def test_bursts_and_quiet_periods_average_out_to_the_requested_rate():
    schedule = bursty()
    horizon = 600.0  # ten minutes: ~240 periods
    assert schedule.due(horizon) == pytest.approx(1000.0 * horizon, rel=0.1)


def test_a_bursty_schedule_has_bursts_and_quiet_periods():
    schedule = bursty(seed=3)
    rates = []
    for step in range(1, 601):  # events per 0.1 s over a minute
        rates.append(schedule.due(step / 10) - schedule.due((step - 1) / 10))
    assert max(rates) > 3 * 100  # bursts at ~4x the mean of 100 per 0.1 s
    assert min(rates) < 0.5 * 100  # quiet periods at ~1/4
    bursting = [schedule.bursting_at(step / 10) for step in range(600)]
    assert 0.05 < sum(bursting) / len(bursting) < 0.5  # ~20 % of the time in bursts


@given(seed=st.integers(0, 2**32 - 1), indices=st.lists(st.integers(0, 200_000), min_size=1, max_size=50))
def test_time_of_is_the_inverse_of_due(seed, indices):
    schedule = bursty(seed)
    for index in sorted(indices):
        at = schedule.time_of(index)
        assert schedule.due(at + 1e-6) >= index + 1  # event `index` is due just after its time
    fresh = bursty(seed)
    for index in sorted(indices):
        at = fresh.time_of(index)
        if at > 1e-6:
            assert fresh.due(at - 1e-6) <= index  # and not before


def test_a_loop_far_behind_a_long_schedule_is_told_to_hurry():
    schedule = bursty(seed=2, rate=10.0)
    assert schedule.due(4 * 3600.0) == pytest.approx(144_000, rel=0.1)  # hours later: old periods dropped
    # Events of periods already forgotten are all simply "due long ago", at one instant in the past.
    assert schedule.time_of(5) == schedule.time_of(500) <= 4 * 3600.0


def test_the_seed_fixes_the_timeline():
    a, b, c = bursty(seed=5), bursty(seed=5), bursty(seed=6)
    times = [0.3 * i for i in range(200)]
    assert [a.due(t) for t in times] == [b.due(t) for t in times]
    assert [a.time_of(i) for i in range(0, 50_000, 997)] != [c.time_of(i) for i in range(0, 50_000, 997)]


@given(rate=st.floats(1.0, 1e5), wakeups=st.lists(st.floats(0.0, 0.3), min_size=1, max_size=200))
def test_a_bursty_schedule_never_drifts_however_late_the_loop_wakes(rate, wakeups):
    schedule = BurstySchedule(rate, random.Random(9))
    t, sent = 0.0, 0
    for gap in wakeups:
        t += gap
        sent += max(0, schedule.due(t) - sent)
    assert sent == schedule.due(t)


def test_the_weighted_picker_keeps_the_shares():
    picker = WeightedPicker([0.5, 0.25, 0.25, 0.0], random.Random(2))
    counts = Counter(picker.next_index() for _ in range(40_000))
    assert counts[0] / 40_000 == pytest.approx(0.5, abs=0.02)
    assert counts[1] / 40_000 == pytest.approx(0.25, abs=0.02)
    assert counts[3] == 0
    with pytest.raises(ValueError):
        WeightedPicker([], random.Random(1))
    with pytest.raises(ValueError):
        WeightedPicker([0.0, 0.0], random.Random(1))
