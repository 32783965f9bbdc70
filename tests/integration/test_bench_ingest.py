"""``bookcast bench ingest`` end to end, tiny: every pass runs and the report holds real figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RATE = 20_000  # level changes/s of the paced pass: small, this is a smoke test, not a measurement


def test_the_ingest_benchmark_drains_and_follows_a_live_feed_at_the_asked_rate(tmp_path: Path) -> None:
    report = tmp_path / "ingest.json"
    args = ["--pairs", "2", "--events", "2000", "--repeats", "1", "--rate", str(RATE),
            "--paced-seconds", "3", "--warmup", "0.5", "--cpu", "-1", "--json", str(report)]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "bookcast", "bench", "ingest", *args],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr  # 1: a goal missed on a busy machine, not a failure
    scenario = json.loads(report.read_text())["scenarios"][0]
    assert scenario["events"] == 2000 and scenario["md_changes_per_s"] > 0
    assert scenario["paced_events"] > 0
    assert abs(scenario["paced_changes_per_s"] - RATE) < RATE * 0.1
    assert scenario["paced_windows_measured"] > 0 and scenario["paced_publish_p99_ms"] > 0
    assert scenario["paced_feed_behind_max_ms"] >= 0  # how far the producer ever trailed its schedule
    assert "md_service, live feed paced at" in done.stdout
