"""``bookcast bench realistic --quick`` end to end: every phase runs on the real stack, the report is whole.

Not a timed test and no performance thresholds: the machine is shared, and whether a goal
is met is what the benchmark reports, not what CI checks. Only that the real pipeline ran,
clients received deltas, the storm and the pause happened, and every field is there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bookcast.bench.realistic_report import SECTIONS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

GOALS = ["frames", "ramp", "overload", "storm", "catch-up", "per-core"]


def test_the_quick_realistic_pass_runs_every_phase_and_reports_every_field(tmp_path: Path) -> None:
    out = tmp_path / "realistic.json"
    done = subprocess.run(
        [sys.executable, "-m", "bookcast", "bench", "realistic", "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    assert set(SECTIONS) | {"settings", "machine", "goals"} <= set(report)
    assert report["settings"]["quick"] is True
    assert [g["goal"] for g in report["goals"]] == GOALS
    assert all(set(g) == {"goal", "text", "met", "figure", "at_scale"} for g in report["goals"])

    ramp, steady = report["ramp"], report["steady"]
    assert ramp["clients"] == ramp["drawn_clients"] + ramp["all_pairs_clients"] + ramp["demo_clients"]
    for key in ("connects_per_s", "connect_failures", "refusals", "handshake_ms", "first_sync_ms"):
        assert key in ramp, key
    assert steady["deltas_per_s"] > 0 and steady["frames_per_s"] > 0
    assert steady["frames_per_client_per_window"] is not None and steady["deltas_per_frame"] is not None
    assert {"drawn", "all-pairs", "listed"} <= set(steady["groups"])
    assert steady["latency_ms"]["window_to_receipt"]["count"] > 0
    assert steady["latency_ms"]["exchange_to_receipt"]["p99_ms"] is not None
    assert {"gateways", "md", "feed", "kafka", "redis", "load", "other"} <= set(steady["cpu_cores"])
    assert steady["kib_per_connection"] is not None and steady["gateway_deltas_per_core"] is not None
    assert steady["integrity"]["checksum_failures"] == 0

    storm = report["storm"]
    assert storm["disconnects"] > 0  # the gateway really died under its clients
    for key in ("synced_after_restart_s", "gone_for_good", "resync_ms", "since_subscribes", "recovered"):
        assert key in storm, key
    pause = report["pause"]
    assert pause["backlog"] > 0 and pause["lag_series"]  # md_service really stopped under the feed
    for key in ("caught_up_after_s", "catch_up_rate", "catch_up_vs_live", "live_rate", "peak_lag"):
        assert key in pause, key
    overload = report["overload"]
    for key in ("refusals_503", "refused_then_connected", "connected", "latency_ms", "gateway_rss_mib"):
        assert key in overload, key
    assert report["synthetic"] is None  # not a --quick phase
    assert all(r is not None for r in report["loads"].values())
    assert "goals (issue 12" in done.stdout
