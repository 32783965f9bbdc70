"""The figures and the verdict: every goal is a check that can fail, and the text says which."""

from __future__ import annotations

import pytest

from bookcast.chaos import verdict
from bookcast.chaos.report import FaultResult, RunFacts, figures, render


def facts(**changes: object) -> RunFacts:
    base = RunFacts(
        command="bookcast chaos --quick", date="2026-12-02 01:00 UTC", seed=1, quick=True, planned_s=55
    )
    base.faults = [
        FaultResult(1, "feed_kill", "feed.1", 0.5, 0.1, 5.7, "client 5 DOT-USD", {"down_s": 0.1}),
        FaultResult(2, "md_freeze", "md-2.1", 9.0, 4.0, 3.4, "pair BTC-USD", {"woke_to": "fenced by Redis"}),
        FaultResult(3, "md_kill", "md-1.1", 20.0, 0.6, 2.5, "client 1 BTC-USD"),
    ]
    base.final = {"compared": {"clients": 58, "md_service": 12, "gateways_rest": 24}, "problems": []}
    base.clients = {"count": 16, "books": 58, "resyncs": 3, "reconnects": 8, "checksum_failures": 0}
    base.gateway = {"replica_integrity_errors": 0, "resyncs": 3, "closes_1011": 0}
    base.publications = {"messages": 5000, "conflicts": [], "same_duplicates": 0, "holes": 0}
    base.dark = [("BTC-USD", 6.4, "#2 md_freeze")]
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def failed(body: dict) -> list[str]:
    return [c["name"] for c in body["verdict"]["checks"] if not c["ok"]]


def test_a_clean_run_passes_with_its_figures() -> None:
    body = figures(facts())
    assert body["verdict"]["passed"] and failed(body) == []
    assert body["faults"]["by_kind"] == {"feed_kill": 1, "md_freeze": 1, "md_kill": 1}
    assert body["faults"]["heal_by_kind"]["md_kill"] == {
        "count": 1,
        "healed": 1,
        "median_s": 2.5,
        "max_s": 2.5,
    }
    assert body["divergent_books"] == 0 and body["duplicates_different_content"] == 0
    text = render(body)
    assert "faults injected: 3" in text and "healed in 5.70 s" in text and text.endswith("PASSED")
    assert "BTC-USD 6.4 s (#2 md_freeze)" in text


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"divergences": ["client 3 BTC-USD: not synced at the end"]}, "books"),
        ({"publications": {"messages": 9, "conflicts": ["BTC-USD e/4"], "same_duplicates": 0}}, "duplicates"),
        ({"tracebacks": ["gateway-1.1: KeyError: 'x' (after: ...)"]}, "tracebacks"),
        (
            {
                "final": {
                    "compared": {"clients": 1},
                    "problems": ["md_service had not stored every partition"],
                }
            },
            "final",
        ),
    ],
)
def test_each_goal_missed_fails_its_own_check(change: dict, check: str) -> None:
    body = figures(facts(**change))
    assert not body["verdict"]["passed"] and failed(body) == [check]
    assert render(body).endswith("FAILED")


def test_a_fault_not_healed_or_breaking_its_rule_fails() -> None:
    faults = facts().faults
    faults[0] = FaultResult(
        1, "garbage", "gateway-1.1", 0.0, 2.0, None, "client 2 BTC-USD", {}, ["garbage deep_id: closed 1011"]
    )
    body = figures(facts(faults=faults))
    assert failed(body) == ["healed", "fault_rules"]
    assert "NOT HEALED" in render(body) and "PROBLEM: garbage deep_id: closed 1011" in render(body)


def test_no_faults_at_all_is_no_pass() -> None:
    assert "healed" in failed(figures(facts(faults=[])))


def test_a_known_failure_still_fails_but_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(verdict.KNOWN_FAILURES, "tracebacks", "a tier bug, see the report")
    body = figures(facts(tracebacks=["md-1.1: ValueError"]))
    assert not body["verdict"]["passed"]
    assert "KNOWN FAILURE tracebacks: 1 in the tiers' logs (a tier bug, see the report)" in render(body)
