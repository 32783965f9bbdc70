"""The fault suite's short pass, as CI runs it: ``bookcast chaos --quick``, the real command.

Every fault kind once (feed, md_service and gateway SIGKILLed and restarted, the broker
frozen, Redis killed and restarted empty, stalled clients, an md_service frozen until it
failed over and then woken, a burst of garbage connections) against the whole stack on
loopback, then every book compared with the exchange's. About a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bookcast.chaos.schedule import FaultKind

pytestmark = pytest.mark.integration


@pytest.mark.timeout(240)
def test_quick_chaos_pass_keeps_every_book_right_and_heals_every_fault(tmp_path) -> None:
    report = tmp_path / "chaos.json"
    command = ["chaos", "--quick", "--json", str(report), "--logs", str(tmp_path / "logs")]
    run = subprocess.run(
        [sys.executable, "-m", "bookcast", *command], capture_output=True, text=True, timeout=200, check=False
    )
    assert report.exists(), f"no report (exit {run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    body = json.loads(report.read_text())
    summary = run.stdout[run.stdout.find("bookcast chaos:") :]
    faults = body["faults"]
    assert sorted(faults["by_kind"]) == sorted(kind.value for kind in FaultKind), summary
    assert body["divergent_books"] == 0, summary
    assert sum(body["books_compared"].values()) >= body["clients"]["books"] + 12, summary
    assert body["duplicates_different_content"] == 0, summary
    assert body["tracebacks"]["count"] == 0, summary
    assert [f["index"] for f in faults["list"] if f["heal_s"] is None] == [], summary
    assert [p for f in faults["list"] for p in f["problems"]] == [], summary
    zombie = next(f for f in faults["list"] if f["kind"] == FaultKind.MD_FREEZE)
    assert zombie["notes"]["woke_to"] in ("fenced by Redis", "revoked by the group"), summary
    stall = next(f for f in faults["list"] if f["kind"] == FaultKind.CLIENT_STALL)
    assert stall["notes"]["closed_slow"] == stall["notes"]["stallers"], summary
    assert body["verdict"]["passed"] and run.returncode == 0, summary
