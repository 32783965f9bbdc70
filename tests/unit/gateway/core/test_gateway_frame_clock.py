"""The frame clock: a batch leaves when its burst is over, or when it has waited long enough."""

from __future__ import annotations

import pytest

from gateway.core.frame_clock import FrameClock


def test_the_first_arrival_arms_and_later_ones_extend_until_the_quiet_gap() -> None:
    clock = FrameClock(quiet_s=0.005, hold_s=0.030)
    assert clock.arrived(10.000) is True
    assert clock.due() == pytest.approx(10.005)
    assert clock.arrived(10.003) is False  # the next slot of the same burst
    assert clock.due() == pytest.approx(10.008)
    clock.arrived(10.006)
    assert clock.due() == pytest.approx(10.011)


def test_a_burst_that_never_pauses_leaves_after_the_hold() -> None:
    clock = FrameClock(quiet_s=0.005, hold_s=0.030)
    clock.arrived(1.0)
    for k in range(1, 40):
        clock.arrived(1.0 + k * 0.002)
    assert clock.due() == pytest.approx(1.030)


def test_after_a_flush_the_next_arrival_starts_a_new_batch() -> None:
    clock = FrameClock(quiet_s=0.005, hold_s=0.030)
    clock.arrived(1.0)
    clock.flushed()
    assert clock.arrived(1.1) is True and clock.due() == pytest.approx(1.105)


def test_zero_means_every_loop_turn_and_hold_is_at_least_quiet() -> None:
    assert FrameClock(0, 0).immediate
    assert not FrameClock(0.005, 0).immediate and FrameClock(0.005, 0).hold_s == 0.005
    with pytest.raises(ValueError):
        FrameClock(-1, 0)
