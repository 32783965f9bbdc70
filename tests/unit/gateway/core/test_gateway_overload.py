"""The overload rule: loop lag in, 503 with Retry-After out, with hysteresis (pure: time is passed in)."""

from __future__ import annotations

import pytest

from gateway.core.overload import Overload


def test_a_late_loop_refuses_handshakes_with_503_and_retry_after() -> None:
    overload = Overload(
        enter_s=0.15, leave_s=0.05, hold_s=2.0, retry_after_s=(1, 5), rand=lambda: 0.99, smooth_s=0
    )
    overload.observe(0.01, now=0.0)
    assert overload.refusal() is None
    overload.observe(0.20, now=1.0)
    refusal = overload.refusal()
    assert refusal is not None and refusal.status == 503 and refusal.code == "overloaded"
    assert refusal.counter == "refused_overloaded" and refusal.retry_after_s == 5.0
    assert overload.entered == 1


def test_it_stays_overloaded_until_the_lag_has_been_low_for_the_hold() -> None:
    overload = Overload(enter_s=0.15, leave_s=0.05, hold_s=2.0, smooth_s=0)
    overload.observe(0.30, now=0.0)
    overload.observe(0.10, now=0.5)  # between leave and enter: still overloaded, no quiet time
    overload.observe(0.01, now=1.0)
    overload.observe(0.01, now=2.9)
    assert overload.overloaded
    overload.observe(0.08, now=3.0)  # not quiet enough: the hold starts again
    overload.observe(0.01, now=3.1)
    overload.observe(0.01, now=5.0)
    assert overload.overloaded
    overload.observe(0.01, now=5.2)
    assert not overload.overloaded and overload.refusal() is None
    overload.observe(0.2, now=6.0)
    assert overload.entered == 2


def test_retry_after_is_spread_over_its_range() -> None:
    draws = iter([0.0, 0.5, 0.999])
    overload = Overload(retry_after_s=(2, 4), rand=lambda: next(draws), smooth_s=0)
    overload.observe(1.0, now=0.0)
    seen = [overload.refusal().retry_after_s for _ in range(3)]  # type: ignore[union-attr]
    assert seen == [2.0, 3.0, 4.0]


def test_zero_disables_the_rule_and_bad_settings_are_refused() -> None:
    overload = Overload(enter_s=0.0, leave_s=0.0)
    overload.observe(10.0, now=0.0)
    assert overload.refusal() is None and overload.lag_s == 10.0
    with pytest.raises(ValueError):
        Overload(enter_s=0.1, leave_s=0.2)


def test_one_late_callback_is_not_overload_but_a_loop_held_for_a_second_is() -> None:
    overload = Overload(enter_s=0.15, leave_s=0.05, smooth_s=0.5)
    now = 0.0
    for _ in range(20):  # on time, then one 200 ms hiccup (a collection), then on time
        now += 0.05
        overload.observe(0.001, now)
    now += 0.25
    overload.observe(0.2, now)
    assert not overload.overloaded and overload.smoothed_s < 0.1
    now += 1.05
    overload.observe(1.0, now)  # a second of work held the loop
    assert overload.overloaded


def test_a_loop_late_by_200_ms_every_turn_enters_within_about_a_second() -> None:
    overload = Overload(enter_s=0.15, leave_s=0.05, smooth_s=0.5)
    now, entered_at = 0.0, None
    while entered_at is None and now < 5:
        now += 0.25
        overload.observe(0.2, now)
        if overload.overloaded:
            entered_at = now
    assert entered_at is not None and entered_at <= 1.5


def test_a_late_loop_in_a_process_using_little_cpu_is_a_starved_machine_not_overload() -> None:
    overload = Overload(enter_s=0.15, leave_s=0.05, hold_s=1.0, min_busy=0.5, smooth_s=0.5)
    now = cpu = 0.0
    for _ in range(40):  # late by 300 ms each time, but using a tenth of a core: others starve us
        now += 0.35
        cpu += 0.035
        overload.observe(0.3, now, cpu)
    assert not overload.overloaded and overload.busy < 0.2 and overload.refusal() is None
    for _ in range(10):  # the same lateness with the process busy: its own work
        now += 0.35
        cpu += 0.3
        overload.observe(0.3, now, cpu)
    assert overload.overloaded and overload.busy > 0.5
    for _ in range(10):  # still late, but the work is gone: it leaves after the hold
        now += 0.35
        cpu += 0.01
        overload.observe(0.3, now, cpu)
    assert not overload.overloaded
