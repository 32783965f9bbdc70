"""The window cadence: which slots close when, late ticks, and the state-check rounds."""

from __future__ import annotations

from md_service.cadence import WindowCadence


def cadence(slots: int = 4, window_ms: int = 100, check_ms: int = 1_000) -> WindowCadence:
    return WindowCadence(window_ms, slots, check_ms, now=0.0)


def test_nothing_is_due_before_the_first_tick() -> None:
    c = cadence()
    assert c.due(0.0) is None
    assert c.due(0.0249) is None


def test_on_time_ticks_take_the_slots_in_turn_once_per_window() -> None:
    c = cadence(slots=4)
    seen = []
    for k in range(1, 9):
        tick = c.due(k * 0.025 + 1e-9)
        assert tick is not None and not tick.late
        seen.append(set(tick.slots))
    assert seen == [{0}, {1}, {2}, {3}] * 2


def test_a_late_loop_gets_every_slot_it_missed_in_one_tick() -> None:
    c = cadence(slots=4)
    tick = c.due(0.051)  # two ticks (0.025, 0.050) have come
    assert tick is not None and tick.late and tick.slots == {0, 1}
    assert c.due(0.052) is None
    after = c.due(0.0751)
    assert after is not None and after.slots == {2}


def test_a_whole_window_behind_restarts_the_cadence_instead_of_bursting() -> None:
    c = cadence(slots=4)
    tick = c.due(1.0)  # 40 ticks late
    assert tick is not None and tick.slots == {0, 1, 2, 3}
    assert c.next_tick == 1.0 + 0.025
    assert c.due(1.01) is None


def test_each_slot_owes_one_state_check_per_check_interval() -> None:
    c = cadence(slots=4, check_ms=100)
    checks = []
    for k in range(1, 13):
        tick = c.due(k * 0.025 + 1e-9)
        assert tick is not None
        checks.append((min(tick.slots), tick.check))
    # the first round starts at the 4th tick (t = 0.1): each slot checks once, then again a round later
    assert [slot for slot, check in checks if check] == [3, 0, 1, 2, 3, 0, 1, 2, 3]
    assert all(not check for _slot, check in checks[:3])


def test_slots_within_a_span_close_right_after_the_boundary() -> None:
    c = WindowCadence(100, 4, 1_000, now=0.0, span_ms=20)
    times = []
    t = 0.0
    while len(times) < 8:
        t += 0.0005
        tick = c.due(t)
        if tick is not None:
            times.append((round(t, 4), set(tick.slots)))
    # slot k of each window at boundary + k * 5 ms: the four turns come as one 15 ms burst
    assert [slots for _t, slots in times] == [{0}, {1}, {2}, {3}] * 2
    starts = [t for t, _slots in times]
    assert starts[3] - starts[0] < 0.016 and 0.099 < starts[4] - starts[0] < 0.101


def test_windows_end_on_the_wall_clocks_multiples_of_the_window() -> None:
    # two instances started at different times close their windows at the same wall instants
    a = WindowCadence(100, 8, 1_000, now=50.0, span_ms=20, wall_now=1_000.037)
    b = WindowCadence(100, 8, 1_000, now=7.0, span_ms=20, wall_now=1_000.081)
    assert abs((a.next_tick - 50.0) - 0.063) < 1e-9  # wall 1000.1
    assert abs((b.next_tick - 7.0) - 0.019) < 1e-9  # wall 1000.1 too


def test_a_whole_window_behind_keeps_the_wall_clock_phase() -> None:
    c = WindowCadence(100, 4, 1_000, now=0.0, span_ms=20, wall_now=0.03)
    assert abs(c.next_tick - 0.07) < 1e-9
    tick = c.due(5.0)
    assert tick is not None and tick.slots == {0, 1, 2, 3}
    assert abs(c.next_tick - 5.07) < 1e-9  # the next boundary, still on the wall's multiples


def test_slots_at_the_boundary_close_together_and_that_is_not_late() -> None:
    c = WindowCadence(100, 8, 1_000, now=0.0, span_ms=0, wall_now=0.05)  # next boundary at 0.05
    tick = c.due(0.0505)  # every slot is due at the boundary
    assert tick is not None and tick.slots == frozenset(range(8)) and not tick.late
    assert c.due(0.12) is None
    late = c.due(0.161)  # 11 ms behind the next boundary (0.15): late
    assert late is not None and late.slots == frozenset(range(8)) and late.late
