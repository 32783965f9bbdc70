"""The realistic benchmark's report: the JSON document and the printed summary (pure).

Every field is always present — a phase that did not run is null — so a reader (or the CI
test) can rely on the shape. The text follows ``bookcast bench fanout``'s style: one block
per phase, CPU per tier, then each goal of issue 12 as met/missed with its figure.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bookcast.bench.realistic_goals import Verdict
from bookcast.bench.realistic_settings import Settings

REPORT_VERSION = 1
SECTIONS = ("ramp", "steady", "storm", "pause", "overload", "synthetic", "loads")
TIERS = ("gateways", "md", "feed", "kafka", "redis", "load", "bench", "other")
LAGGING_MS = 1_000.0
LAGGING = " (WARNING: over a second: the latencies include the generator's own delays; a busy machine)"


def document(
    settings: Settings, sections: dict[str, Any], verdicts: list[Verdict], machine: dict[str, Any]
) -> dict[str, Any]:
    """The JSON report: settings, machine, every section (null if not run), goals."""
    return {
        "tool": "bookcast bench realistic",
        "report_version": REPORT_VERSION,
        "settings": {**asdict(settings), "phases": list(settings.phases)},
        "machine": machine,
        **{name: sections.get(name) for name in SECTIONS},
        "goals": [v.as_dict() for v in verdicts],
    }


def _f(value: float | None, spec: str = ",.1f") -> str:
    return "-" if value is None else format(value, spec)


def _percent(share: float | None) -> float | None:
    return None if share is None else 100 * share


def _lat(block: dict[str, Any] | None) -> str:
    if not block:
        return "-"
    return f"{_f(block.get('p50_ms'))} / {_f(block.get('p99_ms'))} / {_f(block.get('p99.9_ms'))}"


def _mark(v: Verdict) -> str:
    mark = {True: "[met]   ", False: "[MISSED]", None: "[n/a]   "}[v.met]
    return mark if v.at_scale or v.met is None else mark.rstrip() + "*"


def _ramp(s: dict[str, Any], r: dict[str, Any]) -> list[str]:
    shake, first = r["handshake_ms"], r["first_sync_ms"]
    return [
        f"ramp: {r['clients']:,} clients ({r['drawn_clients']:,} on {s['pairs_min']}-{s['pairs_max']} "
        f"drawn pairs, {r['all_pairs_clients']} on every pair, {r['demo_clients']} on the 8 named) "
        f"at {r['ramp_per_s']:g}/s from {r['sources']} addresses",
        f"  connected {r['connected']:,}, synced {r['synced']:,}; all open after "
        f"{_f(r['opened_all_after_s'], '.2f')} s ({_f(r['connects_per_s'], ',.0f')} connects/s), "
        f"all synced after {_f(r['synced_all_after_s'], '.2f')} s",
        f"  connect failures {r['connect_failures']:,}, refusals {r['refusals']:,} "
        f"(503: {r['refusals_503']:,}, 429: {r['refusals_429']:,}); handshake p50/p99 "
        f"{_f(shake['p50_ms'])}/{_f(shake['p99_ms'])} ms, first sync p50/p99 "
        f"{_f(first['p50_ms'])}/{_f(first['p99_ms'])} ms",
    ]


def _steady(st: dict[str, Any]) -> list[str]:
    lat, whole, gw = st["latency_ms"], st["latency_ms_with_ramp"], st.get("gateway_health") or {}
    out = [
        f"steady ({st['seconds']:g} s, {st['open']:,}/{st['clients']:,} open, {st['synced']:,} synced):",
        f"  {st['deltas_per_s']:,.0f} pair-deltas/s, {st['frames_per_s']:,.0f} frames/s, "
        f"{st['bytes_per_s'] / 1e6:,.2f} MB/s to the clients (the gateway counted "
        f"{_f(st['gateway_deltas_out_per_s'], ',.0f')} deltas/s in "
        f"{_f(st['gateway_frames_out_per_s'], ',.0f')} frames/s)",
        f"  per client: {_f(st['frames_per_client_per_s'], '.2f')} frames/s = "
        f"{_f(st['frames_per_client_per_window'], '.2f')} per 100 ms window, "
        f"{_f(st['deltas_per_frame'], '.2f')} deltas per frame",
    ]
    for name, g in st["groups"].items():
        out.append(
            f"    {name:<10} {_f(g['frames_per_client_per_s'], '.2f'):>6} frames/s each "
            f"({_f(g['frames_per_client_per_window'], '.2f')} per window), "
            f"{_f(g['deltas_per_frame'], '.2f')} deltas per frame"
        )
    cpu = ", ".join(f"{t} {st['cpu_cores'].get(t, 0.0):.2f}" for t in TIERS)
    rss = ", ".join(f"{x:,.0f}" for x in st["gateway_rss_mib"])
    out += [
        "  latency ms        p50 / p99 / p99.9      (ramp and steady together)",
        f"  window -> recv    {_lat(lat['window_to_receipt']):<22} ({_lat(whole['window_to_receipt'])})",
        f"  exchange -> recv  {_lat(lat['exchange_to_receipt']):<22} ({_lat(whole['exchange_to_receipt'])})",
        "  integrity: "
        + ", ".join(f"{k} {v:,}" for k, v in st["integrity"].items())
        + f"; the load generator's loop ran late by at most {st['generator_loop_lag_ms']:,.0f} ms"
        + (LAGGING if st["generator_loop_lag_ms"] > LAGGING_MS else ""),
        f"  gateway RSS {rss} MiB: {_f(st['kib_per_connection'])} KiB per connection; broker RSS "
        f"{st['broker_rss_mib']:,.0f} MiB (the embedded broker keeps every message)",
        f"  first gateway: event loop late by {_f(gw.get('loop_lag_ms_mean'), ',.0f')} ms on average, "
        f"{_f(gw.get('loop_lag_ms_max'), ',.0f')} at worst (smoothed, its /metrics); refusing handshakes "
        f"for load {_f(_percent(gw.get('overloaded_share')), '.0f')} % of the time, "
        f"{_f(st.get('gateway_refused_overloaded'), ',.0f')} refused",
        f"  CPU (cores): {cpu}; per gateway core {_f(st['gateway_deltas_per_core'], ',.0f')} pair-deltas/s "
        f"in {_f(st.get('gateway_frames_per_core'), ',.0f')} frames/s",
    ]
    return out


def _storm(sm: dict[str, Any]) -> list[str]:
    after, resync, sub = sm["synced_after_restart_s"], sm["resync_ms"], sm["subscribed_to_synced_ms"]
    late = "" if after is not None else f" (not within {sm['timeout_s']:g} s)"
    return [
        f"storm: gateway-1 SIGKILLed with {sm['clients_of_killed_gateway']:,} clients "
        f"({sm['extra_clients']:,} added for it), restarted {sm['restart_after_kill_s']:.2f} s later, "
        f"answering after {sm['ready_after_launch_s']:.2f} s",
        f"  every client synced again {_f(after, '.2f')} s after the restart{late}; "
        f"gone for good {sm['gone_for_good']:,}",
        f"  per client, drop -> synced p50/p99/max {_f(resync['p50_ms'])}/{_f(resync['p99_ms'])}/"
        f"{_f(resync['max_ms'])} ms (its reconnect backoff included); subscribe -> synced "
        f"{_f(sub['p50_ms'])}/{_f(sub['p99_ms'])}/{_f(sub['max_ms'])} ms (the gateway's part)",
        f"  since: {sm['since_subscribes']:,} subscribes, {sm['recovered']:,} recovered, "
        f"{sm['not_recovered']:,} with snapshots; while it was down {sm['connect_failures']:,} connect "
        f"failures, {sm['refusals']:,} refusals",
    ]


def _pause(pz: dict[str, Any]) -> list[str]:
    return [
        f"md_service paused {pz['paused_s']:.1f} s under {pz['live_rate']:,.0f} events/s: backlog "
        f"{pz['backlog']:,.0f} events, peak lag {pz['peak_lag']:,.0f}",
        f"  lag under {pz['threshold']:,} {_f(pz['caught_up_after_s'], '.2f')} s after resuming; "
        f"catch-up {_f(pz['catch_up_rate'], ',.0f')} events/s = {_f(pz['catch_up_vs_live'], '.1f')}x "
        f"the live rate; new epochs {pz['new_epochs']:g}",
        f"  clients meanwhile: exchange -> recv p99 {_f(pz['client_exchange_p99_ms'])} ms, "
        f"window -> recv p99 {_f(pz['client_window_p99_ms'])} ms, gaps {pz['client_gaps']}",
        *_md_log(pz),
    ]


def _md_log(pz: dict[str, Any]) -> list[str]:
    tail = pz.get("md_log_tail") or []
    return (
        ["  md_service's log at the end (it did not catch up):", *(f"    {line}" for line in tail[-3:])]
        if tail
        else []
    )


def _overload(ov: dict[str, Any]) -> list[str]:
    lat = ov["latency_ms"]["window_to_receipt"]
    return [
        f"overload: {ov['clients']:,} clients on gateway-1 from {ov['sources']} addresses: "
        f"{ov['connected']:,} connected, {ov['synced']:,} synced",
        f"  refusals {ov['refusals']:,} (503: {ov['refusals_503']:,}, 429: {ov['refusals_429']:,}; "
        f"the gateway counted {_f(ov['gateway_refused'], ',.0f')}), {ov['refused_then_connected']:,} "
        f"got in after a refusal, connect failures {ov['connect_failures']:,}",
        f"  window -> recv p50/p99/p99.9 {_lat(lat)} ms; the load generator's loop ran late by at most "
        f"{ov['generator_loop_lag_ms']:,.0f} ms{LAGGING if ov['generator_loop_lag_ms'] > LAGGING_MS else ''}",
        f"  (first third p99 "
        f"{_f(ov['window_p99_first_third_ms'])}, last {_f(ov['window_p99_last_third_ms'])}); "
        f"gateway RSS {ov['gateway_rss_mib'][0]:,.0f} -> {ov['gateway_rss_mib'][1]:,.0f} MiB",
    ]


def _synthetic(sy: dict[str, Any]) -> list[str]:
    if sy.get("error"):
        return [f"synthetic: {sy['error']}"]
    return [
        f"synthetic (bench fanout: {sy['clients']:,} clients, all on the same 8 pairs): "
        f"{_f(sy['deltas_per_s'], ',.0f')} pair-deltas/s on {_f(sy['gateway_cores'], '.2f')} "
        f"gateway cores = {_f(sy['deltas_per_core'], ',.0f')} per core "
        f"(in {_f(sy.get('frames_per_core'), ',.0f')} frames/s); "
        f"window p99 {_f(sy['window_p99_ms'])} ms"
    ]


def _loads(loads: dict[str, Any]) -> list[str]:
    out = ["load generators (their own reports):"]
    for name, r in loads.items():
        if r is None:
            out.append(f"  {name}: no report")
            continue
        busy = ", ".join(f"{x:.0%}" for x in r["cpu_share"])
        lag = ", ".join(f"{x or 0:,.0f}" for x in r.get("loop_lag_max_ms", []))
        warn = "  SATURATED: figures may be the generator's limit" if r["generator_saturated"] else ""
        out.append(
            f"  {name}: {r['connected_at_end']:,}/{r['connections']:,} connected at the end; "
            f"gaps {r['gaps']}, stale {r['stale']}, checksum failures {r['checksum_failures']} "
            f"({r['verified_messages']:,} verified on {r['verifying_connections']}); "
            f"CPU per process {busy}, loop late by at most {lag} ms{warn}"
        )
    return out


def lines(doc: dict[str, Any]) -> list[str]:
    """The printed summary."""
    s, m = doc["settings"], doc["machine"]
    out = [
        f"bookcast bench realistic: {s['pairs']} pairs at {s['rate']:,.0f} events/s (zipf {s['zipf']:g}), "
        f"{s['gateways']} gateway process(es), {m['cores']} cores; load average {m['load_before']} before, "
        f"{m.get('load_after', '-')} after; {m.get('seconds', '-')} s",
        f"phases: {', '.join(s['phases'])}{'  (--quick: not the goals scale)' if s['quick'] else ''}; "
        f"before the clients came md_service had {m.get('pair_streams', '-')} pair streams and trailed the "
        f"feed by {_f(m.get('md_behind_at_start'), ',.0f')} events",
    ]
    sections = [
        ("ramp", lambda r: _ramp(s, r)), ("steady", _steady), ("storm", _storm), ("pause", _pause),
        ("overload", _overload), ("synthetic", _synthetic), ("loads", _loads),
    ]  # fmt: skip
    for name, render in sections:
        if doc[name] is not None:
            out += ["", *render(doc[name])]
    out += ["", "goals (issue 12; * = this run was smaller than the goal's set-up):"]
    for v in doc["goals"]:
        verdict = Verdict(**v)
        out.append(f"  {_mark(verdict)} {verdict.goal}: {verdict.figure}")
    return out
