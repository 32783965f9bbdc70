"""``bookcast bench ingest``'s verdict: the latency goal is judged at the goal's rate, on a live feed."""

from __future__ import annotations

from bookcast.bench.ingest import KEPT_UP_MS, TARGET_CHANGES_PER_S, summarise
from bookcast.bench.ingest_paced import Feed
from bookcast.bench.ingest_run import Pass, Produced

PRODUCED = Produced("t", 16, 128, 300_000, 1_500_000, 5.0)


def drain(p99: float, rate: float = 300_000) -> Pass:
    return Pass("md", 300_000, 1_500_000, 1_500_000 / rate, 4.0, published=500, publish_p99_ms=p99)


def baselines() -> dict[str, list[Pass]]:
    return {kind: [Pass(kind, 300_000, 1_500_000, 2.0, 1.0)] for kind in ("consume", "decode")}


def paced(p99: float, catch_up_ms: float, rate: float = TARGET_CHANGES_PER_S) -> tuple[Pass, Feed]:
    md = Pass("md", 200_000, 1_000_000, 10.0, 6.0, published=9_000, publish_p99_ms=p99, finished_at=110.0)
    feed = Feed("t", 16, 128, 200_000, int(rate * 10), 10.0, 110.0 - catch_up_ms / 1000, 2.0)
    return md, feed


def verdict(drain_pass: Pass, live: list[tuple[Pass, Feed]]) -> dict:
    return summarise(PRODUCED, {**baselines(), "md": [drain_pass]}, live)


def test_without_a_paced_pass_the_drain_decides() -> None:
    assert verdict(drain(p99=8.0), [])["meets_target"]
    assert not verdict(drain(p99=14.0), [])["meets_target"]
    assert not verdict(drain(p99=8.0, rate=120_000), [])["meets_target"]


def test_at_the_goals_rate_the_live_latency_decides_not_the_drains() -> None:
    result = verdict(drain(p99=14.0), [paced(p99=8.0, catch_up_ms=40)] * 3)
    assert result["meets_target"] and result["paced_publish_p99_ms"] == 8.0
    assert not verdict(drain(p99=4.0), [paced(p99=12.0, catch_up_ms=40)] * 3)["meets_target"]


def test_a_live_feed_md_service_fell_behind_on_misses_the_goal() -> None:
    behind = paced(p99=8.0, catch_up_ms=KEPT_UP_MS * 2)
    result = verdict(drain(p99=4.0), [behind] * 3)
    assert not result["meets_target"] and result["paced_catch_up_ms"] == KEPT_UP_MS * 2


def test_a_live_feed_slower_than_the_goal_does_not_judge_it() -> None:
    slow = paced(p99=20.0, catch_up_ms=40, rate=TARGET_CHANGES_PER_S / 2)
    assert verdict(drain(p99=8.0), [slow])["meets_target"]  # the drain judges; the paced pass is reported


def test_the_catch_up_rate_is_the_drain_over_the_live_rate() -> None:
    result = verdict(drain(p99=8.0, rate=300_000), [paced(p99=8.0, catch_up_ms=40)] * 3)
    assert result["catch_up_vs_live"] == round(300_000 / TARGET_CHANGES_PER_S, 2)
