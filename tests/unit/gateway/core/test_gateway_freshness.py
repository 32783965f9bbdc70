"""Per-pair freshness, the pure rules: each pair's rhythm, md_service's heartbeat, the verdict.

A quiet market and a stopped pipeline must no longer look the same. What /health and /metrics
make of the verdicts is tested in ``tests/unit/gateway/test_gateway_health.py``.
"""

from __future__ import annotations

import pytest

from gateway.core.freshness import (
    ArrivalGaps,
    Freshness,
    PairInputs,
    PipelineState,
    StaleReason,
    judge,
    overdue_after,
)

MD_UP = {"v": 1, "kind": "md", "id": "md-1", "kafka": "up", "redis": "up"}


def test_arrival_gaps_learn_a_pairs_usual_rhythm_and_merge_bursts() -> None:
    gaps = ArrivalGaps(keep=64, merge_s=0.005, min_gaps=8)
    t = 0.0
    for i in range(20):
        t += 0.1 if i % 10 else 2.0  # mostly 100 ms, now and then a 2 s lull
        gaps.record("BTC-USD", t)
        gaps.record("BTC-USD", t + 0.001)  # a burst read in the same turn is one arrival
    assert gaps.usual_gap("BTC-USD") == pytest.approx(0.1, abs=0.002)
    assert gaps.last_arrival("BTC-USD") == pytest.approx(t + 0.001)
    gaps.record("ETH-USD", 0.0)
    gaps.record("ETH-USD", 1.0)
    assert gaps.usual_gap("ETH-USD") is None  # too few gaps to trust
    gaps.keep_only(["ETH-USD"])
    assert gaps.last_arrival("BTC-USD") is None and gaps.last_arrival("ETH-USD") == 1.0


def test_pipeline_state_from_md_services_heartbeat() -> None:
    pipeline = PipelineState()
    pipeline.observe([], now=1.0)
    assert pipeline.state == "unknown"  # never seen: cannot tell quiet from stopped
    pipeline.observe([MD_UP, {**MD_UP, "id": "md-2", "kafka": "down"}], now=2.0)
    assert (pipeline.state, pipeline.instances) == ("up", 2)  # one working instance is enough
    pipeline.observe([{**MD_UP, "kafka": "down"}], now=3.0)
    assert pipeline.state == "down" and "kafka down" in pipeline.reason
    assert pipeline.silent_s(now=4.0) == 2.0
    pipeline.observe([], now=5.0)
    assert pipeline.state == "down" and "no md_service status" in pipeline.reason
    pipeline.observe([MD_UP], now=6.0)
    assert pipeline.state == "up"


@pytest.mark.parametrize(
    ("inputs", "pipeline", "verdict"),
    [
        (PairInputs("live", None, 0.5, 0.1), "up", (Freshness.LIVE, None)),
        (PairInputs("live", None, 4.0, 0.1), "up", (Freshness.QUIET, None)),  # 4 s > max(3, 10 x 0.1)
        (PairInputs("live", None, 4.0, 0.1), "unknown", (Freshness.OVERDUE, None)),
        (PairInputs("live", None, 4.0, 1.0), "unknown", (Freshness.LIVE, None)),  # its usual gap: 10 s
        (PairInputs("live", None, 999.0, None), "unknown", (Freshness.LIVE, None)),  # rhythm unknown
        (PairInputs("live", None, 0.0, 0.1), "down", (Freshness.STALE, StaleReason.PIPELINE_DOWN)),
        (PairInputs("loading", None, 1.0, None), "up", (Freshness.LOADING, None)),
        (PairInputs("loading", StaleReason.NOT_LIVE, 9.0, None), "up",
         (Freshness.STALE, StaleReason.NOT_LIVE)),
        (PairInputs("live", StaleReason.BEHIND, 0.0, 0.1), "up", (Freshness.STALE, StaleReason.BEHIND)),
        (PairInputs("no_data", None, 99.0, None), "down", (Freshness.NO_DATA, None)),
    ],
)  # fmt: skip
def test_judge(inputs: PairInputs, pipeline: str, verdict: tuple) -> None:
    assert judge(inputs, pipeline, factor=10.0, min_s=3.0) == verdict


# --- edges of the documented rules ----------------------------------------------------------


def test_overdue_after_is_the_factor_times_the_usual_gap_never_below_the_floor() -> None:
    assert overdue_after(None, factor=10.0, min_s=3.0) is None  # rhythm not known yet
    assert overdue_after(0.1, factor=10.0, min_s=3.0) == 3.0
    assert overdue_after(0.5, factor=10.0, min_s=3.0) == 5.0


def test_a_pair_exactly_at_its_limit_is_still_live() -> None:
    at_limit = PairInputs("live", None, 3.0, 0.1)
    assert judge(at_limit, "up", factor=10.0, min_s=3.0) == (Freshness.LIVE, None)
    just_past = PairInputs("live", None, 3.001, 0.1)
    assert judge(just_past, "up", factor=10.0, min_s=3.0) == (Freshness.QUIET, None)


def test_only_a_silent_pipeline_is_not_this_gateways_own_fault() -> None:
    assert [reason for reason in StaleReason if not reason.local] == [StaleReason.PIPELINE_DOWN]


def test_the_rhythm_needs_min_gaps_and_forgets_all_but_the_last_keep() -> None:
    gaps = ArrivalGaps(keep=8, merge_s=0.005, min_gaps=4)
    for t in (0.0, 1.0, 2.0, 3.0):  # three gaps of 1 s
        gaps.record("P", t)
    assert gaps.usual_gap("P") is None
    gaps.record("P", 4.0)  # the fourth
    assert gaps.usual_gap("P") == 1.0
    t = 4.0
    for _ in range(8):  # eight gaps of 0.2 s push every 1 s gap out
        t += 0.2
        gaps.record("P", t)
    assert gaps.usual_gap("P") == pytest.approx(0.2)


def test_no_status_ever_seen_stays_unknown_rather_than_down() -> None:
    pipeline = PipelineState()
    for now in (1.0, 2.0, 3.0):
        pipeline.observe([], now)
    assert pipeline.state == "unknown" and pipeline.silent_s(3.0) is None
    pipeline.observe([{"kafka": "up", "redis": "down"}], 4.0)  # seen, but none can work
    assert pipeline.state == "down" and "redis down" in pipeline.reason
    assert pipeline.silent_s(4.0) is None  # a working instance was never seen
