"""``bookcast load`` against the real stack: feed, md_service and a gateway as real processes.

50 connections x 2 pairs for 5 s through the real command (two worker processes); the
JSON report must hold plausible, non-zero figures and no gap, checksum failure or
disconnect.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import orjson
import pytest

from bookcast.processes import TierProcess
from tests.integration.stack_helpers import isolated_stack, stored_state, wait_until

pytestmark = pytest.mark.integration

PAIRS = ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD")


@pytest.fixture(scope="module")
def stack(infra) -> Iterator[dict]:
    env, _, prefix = isolated_stack(infra, "load", PAIRS, 4)
    md = TierProcess("md", "md_service", env=env).start()
    gateway = TierProcess("gateway", "gateway", env=env, listens=True).start()
    feed = TierProcess(
        "feed",
        "feed_simulator",
        ["--rate", "400", "--duration", "60", "--seed", "3", "--max-levels", "100"],
        env=env,
    ).start()
    try:
        for pair in PAIRS:  # every book exists before the load starts
            wait_until(
                lambda p=pair: stored_state(infra.redis_url, prefix, p, 4).get("seq"),
                what=f"{pair} published",
            )
        yield {"gateway": gateway, "prefix": prefix}
    finally:
        feed.stop()
        gateway.stop()
        md.stop()


def test_a_short_real_run_reports_plausible_figures_and_no_gap(stack, tmp_path) -> None:
    report_path = tmp_path / "load.json"
    command = [
        sys.executable, "-m", "clients", "load", "--url", stack["gateway"].ws_url, "--connections", "50",
        "--pairs", "2", "--pool", ",".join(PAIRS), "--duration", "5", "--processes", "2",
        "--verify-sample", "0.1", "--progress-interval", "1", "--json", str(report_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=40)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "frames/s" in done.stderr  # progress lines while running
    assert "p99.9" in done.stdout  # the summary table
    report = orjson.loads(report_path.read_bytes())

    assert (report["connections"], report["processes"], report["pairs_per_connection"]) == (50, 2, "2")
    assert report["connected_at_end"] == 50
    assert 4.5 <= report["elapsed"] <= 10
    # Every connection got a snapshot of each of its pairs, then deltas (~10 a second per pair).
    assert report["snapshots"] >= 100
    assert report["deltas"] >= 50 * 2 * 10 * 2  # at least 2 s worth of windows on every stream
    assert report["frames_per_s"] > 100 and report["bytes_per_s"] > report["frames_per_s"] * 50
    for key in ("exchange_to_receipt", "window_to_receipt"):
        latency = report["latency_ms"][key]
        assert latency["count"] == report["deltas"]
        assert 0 < latency["p50_ms"] <= latency["p90_ms"] <= latency["p99_ms"] <= latency["p99.9_ms"]
        assert latency["p99.9_ms"] <= latency["max_ms"] < 10_000
    # The exchange time is before the window closes: its latency is the larger one.
    assert (
        report["latency_ms"]["exchange_to_receipt"]["p50_ms"]
        > report["latency_ms"]["window_to_receipt"]["p50_ms"]
    )
    assert report["verifying_connections"] == 5 and report["verified_messages"] > 100
    assert report["gaps"] == report["epoch_changes"] == report["checksum_failures"] == 0
    assert report["disconnects"] == report["connect_failures"] == 0
    assert report["counters"]["bad_frames"] == report["counters"]["errors"] == 0
    assert [p["connections"] for p in report["per_process"]] == [25, 25]
