"""Phase 1 of ``bookcast bench realistic``: the clients arrive (``ramp``), then a steady window.

The figures a user asks first: how fast clients get in and synced, and then, with all of them
on, deltas and frames per second and per client, latency from window close and from exchange
time, CPU per tier and memory per connection. See :mod:`bookcast.bench.realistic_phases`.
"""

from __future__ import annotations

import time
from typing import Any

from bookcast.bench.realistic_figures import combined, cpu_cores, latency_ms
from bookcast.bench.realistic_load import load_args
from bookcast.bench.realistic_phases import MIB, Phases, fmt, growth, latency_block, pct, per_window
from mdcore.instruments import NAMED_PAIRS


def ramp(phases: Phases) -> dict[str, Any]:
    """Open phase one's clients at ``--ramp`` per second and wait until every one is synced."""
    s, stack = phases.s, phases.stack
    phases.rss_before = [stack.gateway_rss(i) for i in range(len(stack.gateways))]
    budget = phases.budget()
    main_args = load_args(
        stack.urls, s.clients, pairs=f"{s.pairs_min}-{s.pairs_max}", pool=s.pairs, zipf=s.zipf,
        all_pairs=s.all_pairs_clients, ramp=s.ramp, sources=s.source_list(), duration=budget, seed=s.seed,
        processes=s.load_processes, verify_sample=s.verify_sample,
    )  # fmt: skip
    runs = [phases.start_load("load-main", main_args, s.clients + s.all_pairs_clients)]
    if s.demo_clients:
        demo_args = load_args(
            stack.urls[:1], s.demo_clients, pairs=",".join(NAMED_PAIRS), pool=s.pairs, ramp=s.ramp,
            sources=s.source_list(), duration=budget, seed=s.seed, processes=1, verify_sample=0.0,
        )  # fmt: skip
        runs.append(phases.start_load("load-demo", demo_args, s.demo_clients))
    started = phases.ramp_started = time.time()
    timeout = s.phase_one_clients / s.ramp + s.wait_timeout
    phases.say(f"ramp: {s.phase_one_clients:,} clients at {s.ramp:g}/s from {s.sources} addresses …")
    phases.wait(runs, lambda r: r["synced"] >= r["connections"], timeout)
    ended = time.time()
    # Times from each load's own start (its workers' common instant), not from launching it.
    lasts = [run.last() for run in runs]
    opened = [r.get("all_open_after") if r else None for r in lasts]
    opened_after = None if None in opened else max(o for o in opened if o is not None)
    all_synced = all(r is not None and r["synced"] >= r["connections"] for r in lasts)
    synced_after = (
        max(r["synced_ns"] / 1e9 - (r["t"] - r["elapsed"]) for r in lasts if r) if all_synced else None
    )
    main_open = opened[0]
    w = combined(phases.timelines(), started - 1, ended)
    lat = latency_ms(w)
    result = {
        "clients": s.phase_one_clients,
        "drawn_clients": s.clients,
        "all_pairs_clients": s.all_pairs_clients,
        "demo_clients": s.demo_clients,
        "ramp_per_s": s.ramp,
        "sources": s.sources,
        "opened_all_after_s": opened_after,
        "connects_per_s": runs[0].connections / main_open if main_open else None,
        "synced_all_after_s": synced_after,
        "connected": sum(r["open"] for r in lasts if r),
        "synced": sum(r["synced"] for r in lasts if r),
        "connect_failures": w.count("connect_failures"),
        "refusals": w.count("refusals"),
        "refusals_503": w.count("refusals_503"),
        "refusals_429": w.count("refusals_429"),
        "handshake_ms": {k: pct(lat["handshake"], k) for k in ("p50_ms", "p99_ms", "max_ms")},
        "first_sync_ms": {k: pct(lat["first_sync"], k) for k in ("p50_ms", "p99_ms", "max_ms")},
    }
    phases.say(
        f"ramp: {result['connected']:,} connected, {result['synced']:,} synced; "
        f"{result['connect_failures']} failures, {result['refusals']} refusals"
    )
    return result


def steady(phases: Phases) -> dict[str, Any]:
    """After ``--settle`` s, measure ``--steady`` s with every phase-one client on."""
    s, stack = phases.s, phases.stack
    phases.sleep(s.settle)
    rss = [stack.gateway_rss(i) for i in range(len(stack.gateways))]
    server0 = phases.gateway_counters()
    cpu0, t0 = stack.cpu(), time.time()
    phases.say(f"steady: measuring {s.steady:g} s …")
    watched = phases.watch_gateway(s.steady)
    cpu1, t1 = stack.cpu(), time.time()
    server1 = phases.gateway_counters()
    phases.rounds_past(t1)
    w = combined(phases.timelines(), t0, t1)
    cores = cpu_cores(cpu0, cpu1, t1 - t0)
    machine = cores.pop("machine")
    cores["other"] = max(0.0, machine - sum(cores.values()))
    clients_gw1 = phases.clients_on_first_gateway()
    deltas = w.rates.get("deltas", 0.0)
    groups = {name: w.per_client(name) for name in sorted(w.groups)}
    everyone = w.per_client()
    result = {
        "seconds": round(w.seconds, 2),
        "clients": w.connections,
        "open": w.open,
        "synced": w.synced,
        "deltas_per_s": deltas,
        "frames_per_s": w.rates.get("frames", 0.0),
        "messages_per_s": w.rates.get("messages", 0.0),
        "bytes_per_s": w.rates.get("bytes", 0.0),
        "frames_per_client_per_s": everyone["frames_per_client_per_s"],
        "frames_per_client_per_window": per_window(everyone["frames_per_client_per_s"]),
        "deltas_per_frame": everyone["deltas_per_frame"],
        "groups": {
            name: {**g, "frames_per_client_per_window": per_window(g["frames_per_client_per_s"])}
            for name, g in groups.items()
        },
        "latency_ms": latency_block(w),
        "latency_ms_with_ramp": latency_block(combined(phases.timelines(), phases.ramp_started - 1, t1)),
        "integrity": {
            k: w.count(k) for k in ("gaps", "resyncs", "stale", "checksum_failures", "disconnects")
        },
        "generator_loop_lag_ms": w.loop_lag_ms,
        "gateway_health": watched,
        "gateway_refused_overloaded": growth(server0, server1, "refused_overloaded"),
        "cpu_cores": cores,
        "gateway_deltas_per_core": deltas / cores["gateways"] if cores.get("gateways") else None,
        "gateway_frames_per_core": w.rates.get("frames", 0.0) / cores["gateways"]
        if cores.get("gateways")
        else None,
        "gateway_frames_out_per_s": growth(server0, server1, "frames_out", t1 - t0),
        "gateway_deltas_out_per_s": growth(server0, server1, "deltas_out", t1 - t0),
        "gateway_rss_mib": [round(r / MIB, 1) for r in rss],
        "kib_per_connection": (rss[0] - phases.rss_before[0]) / 1024 / clients_gw1
        if rss and rss[0]
        else None,
        "broker_rss_mib": round(stack.broker_rss() / MIB, 1),
        "clients_on_first_gateway": clients_gw1,
    }
    lat = result["latency_ms"]["window_to_receipt"]
    phases.say(
        f"steady: {deltas:,.0f} deltas/s, {result['frames_per_s']:,.0f} frames/s, window p99 "
        f"{fmt(lat['p99_ms'])} ms, gateway {cores.get('gateways', 0):.2f} cores"
    )
    return result
