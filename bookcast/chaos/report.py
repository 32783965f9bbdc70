"""The run's figures as one JSON-ready mapping, and the same as text. Pure.

The runner collects plain facts (:class:`RunFacts`); :func:`figures` shapes them (what
``--json`` writes and the CI test reads) and :func:`render` prints them for a person.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bookcast.chaos.verdict import Check, checks


@dataclass(frozen=True, slots=True)
class FaultResult:
    index: int
    kind: str
    target: str
    at_s: float  # when it was injected, seconds into the fault phase
    held_s: float  # injected -> lifted
    heal_s: float | None  # lifted -> every pair published and every client current again; None: never
    waiting_for: str  # what healed last (or is still missing)
    notes: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class RunFacts:
    """Everything a report says, gathered by the runner."""

    command: str
    date: str
    seed: int
    quick: bool
    planned_s: float
    elapsed_s: float = 0.0
    fault_phase_s: float = 0.0
    setup: dict[str, Any] = field(default_factory=dict)  # pairs, partitions, tiers, rate, overrides
    machine: dict[str, Any] = field(default_factory=dict)  # cpus, load averages, what else ran
    faults: list[FaultResult] = field(default_factory=list)
    clients: dict[str, int] = field(default_factory=dict)  # count, books, updates, ClientStats sums
    gateway: dict[str, int] = field(default_factory=dict)  # counters summed over incarnations
    md: dict[str, int] = field(default_factory=dict)
    publications: dict[str, Any] = field(default_factory=dict)  # messages, conflicts, duplicates, holes
    dark: list[tuple[str, float, str]] = field(default_factory=list)  # pair, seconds, during which fault
    final: dict[str, Any] = field(default_factory=dict)
    divergences: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    log_dir: str = ""


def _heal_summary(faults: list[FaultResult]) -> dict[str, dict[str, float | int | None]]:
    out: dict[str, dict[str, float | int | None]] = {}
    for kind in sorted({f.kind for f in faults}):
        heals = [f.heal_s for f in faults if f.kind == kind]
        done = [h for h in heals if h is not None]
        out[kind] = {
            "count": len(heals),
            "healed": len(done),
            "median_s": round(statistics.median(done), 2) if done else None,
            "max_s": round(max(done), 2) if done else None,
        }
    return out


def figures(facts: RunFacts) -> dict[str, Any]:
    """The figures: what ``--json`` writes; :func:`bookcast.chaos.verdict.checks` judges them."""
    by_kind = Counter(f.kind for f in facts.faults)
    body: dict[str, Any] = {
        "command": facts.command,
        "date": facts.date,
        "seed": facts.seed,
        "quick": facts.quick,
        "planned_s": facts.planned_s,
        "elapsed_s": round(facts.elapsed_s, 1),
        "fault_phase_s": round(facts.fault_phase_s, 1),
        "setup": facts.setup,
        "machine": facts.machine,
        "faults": {
            "injected": len(facts.faults),
            "by_kind": dict(sorted(by_kind.items())),
            "heal_by_kind": _heal_summary(facts.faults),
            "list": [
                {
                    "index": f.index, "kind": f.kind, "target": f.target, "at_s": round(f.at_s, 1),
                    "held_s": round(f.held_s, 2), "heal_s": None if f.heal_s is None else round(f.heal_s, 2),
                    "waiting_for": f.waiting_for, "notes": f.notes, "problems": f.problems,
                }
                for f in facts.faults
            ],
        },
        "clients": facts.clients,
        "books_compared": facts.final.get("compared", {}),
        "divergent_books": len(facts.divergences),
        "divergences": facts.divergences[:50],
        "server_checksum_faults": {
            "gateway_replica_integrity_errors": facts.gateway.get("replica_integrity_errors", 0),
            "client_checksum_failures": facts.clients.get("checksum_failures", 0),
        },
        "duplicates_different_content": len(facts.publications.get("conflicts", [])),
        "duplicates_same_content": facts.publications.get("same_duplicates", 0),
        "publications": facts.publications,
        "resyncs": {
            "clients_sent": facts.clients.get("resyncs", 0),
            "gateway_answered": facts.gateway.get("resyncs", 0),
        },
        "reconnects": {
            "clients": facts.clients.get("reconnects", 0),
            "gateway_redis_links": facts.gateway.get("redis_connects", 0),
        },
        "dark": [{"pair": p, "longest_s": round(s, 2), "during": d} for p, s, d in facts.dark],
        "gateway_counters": facts.gateway,
        "md_counters": facts.md,
        "final": facts.final,
        "tracebacks": {"count": len(facts.tracebacks), "list": facts.tracebacks[:20]},
        "log_dir": facts.log_dir,
    }  # fmt: skip
    results = checks(body)
    body["verdict"] = {
        "passed": all(c.ok for c in results),
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "known": c.known} for c in results],
    }
    return body


def _fmt(seconds: float | None) -> str:
    return "NOT HEALED" if seconds is None else f"{seconds:.2f} s"


def render(body: dict[str, Any]) -> str:
    """The figures for a person: faults and time to heal, books, duplicates, counters, verdict."""
    setup, machine = body["setup"], body["machine"]
    lines = [
        f"bookcast chaos: {body['command']}",
        f"  date {body['date']}, seed {body['seed']}, {body['elapsed_s']} s in all, "
        f"faults for {body['fault_phase_s']} s",
        f"  machine: {machine.get('cpus')} CPUs, load {machine.get('load_before')} before, "
        f"{machine.get('load_after')} after; busiest other processes before: "
        f"{', '.join(machine.get('busiest_before', [])) or 'none'}"
        + (f"; also running: {machine['others']}" if machine.get("others") else ""),
        f"  stack: {setup.get('pairs')} pairs, {setup.get('partitions')} partitions, "
        f"feed {setup.get('feed_rate')} events/s, {setup.get('md_instances')} md_service, "
        f"{setup.get('gateways')} gateways, {body['clients'].get('count')} clients "
        f"({body['clients'].get('books')} books); settings {', '.join(setup.get('overrides', []))}",
        "",
        f"faults injected: {body['faults']['injected']}  "
        + ", ".join(f"{k} {v}" for k, v in body["faults"]["by_kind"].items()),
    ]
    for f in body["faults"]["list"]:
        notes = ", ".join(f"{k} {v}" for k, v in f["notes"].items())
        lines.append(
            f"  #{f['index']:<3} {f['kind']:<14} {f['target']:<14} at {f['at_s']:>6.1f} s  "
            f"held {f['held_s']:>5.2f} s  healed in {_fmt(f['heal_s'])} (last: {f['waiting_for']})"
            + (f"  {notes}" if notes else "")
        )
        lines.extend(f"        PROBLEM: {p}" for p in f["problems"])
    lines.append("time to heal by kind (after the fault was lifted): count, median, max")
    for kind, h in body["faults"]["heal_by_kind"].items():
        lines.append(f"  {kind:<14} {h['healed']}/{h['count']}  {_fmt(h['median_s'])}  {_fmt(h['max_s'])}")
    lines.append("longest dark stretch per pair (no publication), during the faults:")
    lines.append(
        "  " + ", ".join(f"{d['pair']} {d['longest_s']:.1f} s ({d['during']})" for d in body["dark"])
    )
    c, g, m = body["clients"], body["gateway_counters"], body["md_counters"]
    lines += [
        "",
        f"books compared: {body['books_compared']}; divergent: {body['divergent_books']}",
        *(f"  DIVERGENT {d}" for d in body["divergences"]),
        f"duplicate seqs with different content: {body['duplicates_different_content']} "
        f"(same content: {body['duplicates_same_content']}; publications recorded "
        f"{body['publications'].get('messages')}, seq holes seen {body['publications'].get('holes')})",
        f"server checksum faults: gateway replica integrity errors {g.get('replica_integrity_errors', 0)}; "
        f"client checksum failures {c.get('checksum_failures', 0)}",
        f"resyncs: clients sent {c.get('resyncs', 0)}, gateways answered {g.get('resyncs', 0)}; "
        f"gaps seen by clients {c.get('gaps', 0)}, replica gaps {g.get('replica_gaps', 0)}, "
        f"reloads {g.get('replica_reloads', 0)}",
        f"reconnects: clients {c.get('reconnects', 0)} (recovered with since: {c.get('recoveries', 0)}), "
        f"gateway Redis links {g.get('redis_connects', 0)}",
        f"md_service: epochs started {m.get('epochs_started', 0)}, "
        f"partitions fenced {m.get('partitions_lost', 0)}, "
        f"writes refused {m.get('pairs_refused', 0)}, Redis lost writes {m.get('writes_lost', 0)}, "
        f"duplicate events skipped {m.get('events_duplicate', 0)}",
        f"gateway closes: 1011 {g.get('closes_1011', 0)}, 4008 (slow) {g.get('closed_slow', 0)}, "
        f"1008 (rate) {g.get('closed_rate_limited', 0)}; "
        f"internal_error answers {g.get('errors_internal_error', 0)}",
        f"end: md_service quiet after {body['final'].get('quiet_s')} s, everyone in step after "
        f"{body['final'].get('synced_s')} s; exchange events {body['final'].get('source_events')} "
        f"(+{body['final'].get('source_replays')} replayed by the restarted feed)",
        f"tracebacks in the tiers' logs: {body['tracebacks']['count']}",
        *(f"  {t}" for t in body["tracebacks"]["list"]),
        f"logs: {body['log_dir']}",
        "",
        "verdict:",
    ]
    for check in body["verdict"]["checks"]:
        lines.append("  " + Check(check["name"], check["ok"], check["detail"], check["known"]).line())
    lines.append("PASSED" if body["verdict"]["passed"] else "FAILED")
    return "\n".join(lines)
