"""The fault schedule: seeded, every kind in the first round with the feed's kill first, sized to the run."""

from __future__ import annotations

from bookcast.chaos.schedule import ESTIMATED_COST_S, FaultKind, plan
from bookcast.chaos.settings import ChaosSettings


def test_one_seed_is_one_schedule_and_another_seed_another() -> None:
    assert plan(7, 300) == plan(7, 300)
    assert [f.kind for f in plan(7, 300)] != [f.kind for f in plan(8, 300)]


def test_the_quick_pass_injects_every_kind_once_the_feed_first() -> None:
    faults = plan(3, 55, quick=True)
    assert faults[0].kind is FaultKind.FEED_KILL
    assert sorted(f.kind for f in faults) == sorted(FaultKind)
    assert [f.index for f in faults] == list(range(1, len(faults) + 1))


def test_a_long_run_repeats_every_kind_but_kills_the_feed_only_first() -> None:
    faults = plan(1, 300)
    kinds = [f.kind for f in faults]
    assert kinds.count(FaultKind.FEED_KILL) == 1 and kinds[0] is FaultKind.FEED_KILL
    assert all(kinds.count(kind) >= 2 for kind in FaultKind if kind is not FaultKind.FEED_KILL)


def test_the_plan_fits_the_duration_after_its_first_round() -> None:
    assert len(plan(5, 30)) == len(FaultKind)  # one whole round even when it does not fit
    for duration in (120, 300, 900):
        faults = plan(5, duration)
        estimated = sum(ESTIMATED_COST_S[f.kind] + f.gap_s + f.hold_s for f in faults)
        assert len(faults) > len(FaultKind)
        assert estimated - faults[-1].hold_s <= duration
        assert len(plan(5, duration * 2)) > len(faults)


def test_targets_name_processes_that_exist() -> None:
    for fault in plan(11, 600, mds=2, gateways=3):
        expected = {
            FaultKind.FEED_KILL: {"feed"},
            FaultKind.MD_KILL: {"md-1", "md-2"},
            FaultKind.MD_FREEZE: {"md-1", "md-2"},
            FaultKind.BROKER_FREEZE: {"kafka"},
            FaultKind.REDIS_RESTART: {"redis"},
        }.get(fault.kind, {"gateway-1", "gateway-2", "gateway-3"})
        assert fault.target in expected, fault
        assert fault.hold_s >= 0 and fault.gap_s >= 1.0


def test_settings_name_every_tier_setting_they_change() -> None:
    quick, full = ChaosSettings.for_run(None, 1, True), ChaosSettings.for_run(None, 1, False)
    assert quick.quick and quick.duration_s < full.duration_s
    assert "BOOKCAST_MD_SESSION_TIMEOUT_MS=2000" in full.overrides()
    assert all(item.startswith("BOOKCAST_") for item in full.overrides())
