"""``bookcast bench scale --quick`` end to end: it runs on 1 and 2 primaries and counts right.

A check of the benchmark, not a performance threshold: every message published must reach
every subscriber (nothing is lost on loopback at quick rates), so delivered = published x
subscribers, and both shard counts must deliver something.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_the_scale_benchmark_delivers_every_message_to_every_subscriber_on_1_and_2_shards(
    tmp_path: Path,
) -> None:
    report = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, "-m", "bookcast", "bench", "scale", "--quick", "--json", str(report)],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(report.read_text())
    runs = {run["shards"]: run for run in figures["runs"]}
    assert set(runs) == {1, 2}
    for k, run in runs.items():
        assert run["connections"] == run["subscribers"] * k  # one connection per primary each
        assert run["delivered_per_s"] > 0 and run["published_total"] > 0, run
        expected = run["published_total"] * run["subscribers"]
        assert abs(run["delivered_total"] - expected) <= expected * 0.01, run
        assert run["receivers_total"] == expected, run  # the servers' own count agrees
        assert len(run["valkey_cores"]) == k and all(c > 0 for c in run["valkey_cores"]), run
    assert figures["machine"]["cores"] >= 1
    assert "verdict:" in done.stdout
