"""The figures of ``bookcast load``: rates, percentiles and counts as JSON and a table, the progress line."""

from __future__ import annotations

import orjson
import pytest

from clients.load.report import LoadReport, WorkerResult, progress_line
from clients.load.stats import ConnTimes, GroupTally, Latencies, LoadCounters


def _report(busy=0.2):
    latencies = Latencies()
    for v in (1000, 2000, 3000):
        latencies.window.record_value(v)
        latencies.exchange.record_value(v * 10)
    counters = {
        "frames": 500,
        "bytes": 50_000,
        "messages": 600,
        "deltas": 590,
        "snapshots": 10,
        "connects": 5,
    }
    workers = [WorkerResult(w, LoadCounters(**counters), 5.0, 5.0 * busy, 5, 5, 0.3) for w in range(2)]
    return LoadReport(["ws://a:1/ws"], 10, 2, 5.0, workers, latencies, 1)


def test_the_report_has_rates_percentiles_and_counts():
    body = orjson.loads(orjson.dumps(_report().as_dict()))
    assert (body["frames"], body["frames_per_s"], body["messages_per_s"]) == (1000, 200.0, 240.0)
    assert body["bytes_per_s"] == 20_000.0
    assert body["latency_ms"]["window_to_receipt"]["count"] == 3
    assert body["latency_ms"]["exchange_to_receipt"]["p50_ms"] == pytest.approx(20.0, rel=0.01)
    assert (body["gaps"], body["disconnects"], body["connected_at_end"], body["processes"]) == (0, 0, 10, 2)
    assert body["all_connected_after_s"] == 0.3
    assert body["generator_saturated"] is False
    text = "\n".join(_report().table())
    assert "p99.9" in text and "frames" in text and "WARNING" not in text


def test_a_busy_generator_is_flagged():
    report = _report(busy=0.97)
    assert report.as_dict()["generator_saturated"] is True
    assert any("generator's limit" in line for line in report.table())


def test_progress_line():
    now, before = LoadCounters(frames=300, bytes=2_000_000, gaps=1), LoadCounters(frames=100)
    interval = Latencies()
    interval.window.record_value(4_000)
    interval.exchange.record_value(90_000)
    line = progress_line(4.0, 9, 10, now, before, 2.0, interval)
    assert "9/10 open" in line and "100 frames/s" in line and "1.00 MB/s" in line and "gaps 1" in line
    assert "p99 window 4.0 ms" in line


# --- the whole report -------------------------------------------------------------------------


def test_the_report_has_refusals_groups_and_sync_times() -> None:
    counters = LoadCounters(
        frames=400, deltas=1200, connects=12, refusals=5, refusals_503=4, refusals_429=1,
        refused_then_connected=2, since_subscribes=3, recovered_answers=2, recovery_misses=1, resynced=3,
    )  # fmt: skip
    groups = {"drawn": GroupTally(8, 300, 600), "all-pairs": GroupTally(2, 100, 600)}
    worker = WorkerResult(0, counters, 10.0, 1.0, 10, 10, 2.0, 9, groups)
    times = ConnTimes()
    times.resync.record_value(1_200_000)
    report = LoadReport(
        ["ws://a:1/ws"], 10, "1-5 drawn (zipf 1)", 10.0, [worker], Latencies(), 1, times=times
    )
    body = orjson.loads(orjson.dumps(report.as_dict()))
    assert body["report_version"] == 2
    assert (body["refusals"], body["refusals_by_status"], body["refused_then_connected"]) == (
        5, {"503": 4, "429": 1}, 2,
    )  # fmt: skip
    assert (body["connects_per_s"], body["synced_at_end"], body["frames_per_connection_per_s"]) == (
        5.0,
        9,
        4.0,
    )
    assert body["deltas_per_frame"] == 3.0
    drawn = body["groups"]["drawn"]
    assert (drawn["connections"], drawn["frames_per_connection_per_s"], drawn["deltas_per_frame"]) == (
        8,
        3.75,
        2.0,
    )
    assert body["latency_ms"]["resync_after_disconnect"]["count"] == 1
    assert body["since"] == {"subscribes": 3, "recovered": 2, "not_recovered": 1}
    text = "\n".join(report.table())
    assert "refused for load (503: 4, 429: 1" in text and "all-pairs" in text and "resync (drop)" in text
