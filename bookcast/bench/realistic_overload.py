"""Phase 4 of ``bookcast bench realistic``: twice the clients on one gateway.

Fresh clients after phase one's are gone: who was refused (503/429), whether they got in later,
and what the overload did to latency and memory. See :mod:`bookcast.bench.realistic_phases`.
"""

from __future__ import annotations

import time
from typing import Any

from bookcast.bench.realistic_figures import latency_ms, thirds, window
from bookcast.bench.realistic_load import load_args
from bookcast.bench.realistic_phases import MIB, Phases, fmt, growth, latency_block, pct


def overload(phases: Phases) -> dict[str, Any]:
    """``--overload`` fresh clients on gateway-1 (phase one's are gone): refusals, latency, memory."""
    s, stack = phases.s, phases.stack
    n = s.overload
    phases.sleep(2.0)  # the closes of phase one are behind the gateway
    server0 = phases.gateway_counters()
    args = load_args(
        stack.urls[:1], n, pairs=f"{s.pairs_min}-{s.pairs_max}", pool=s.pairs, zipf=s.zipf, ramp=s.ramp,
        sources=s.source_list(s.overload_sources), duration=n / s.ramp + s.wait_timeout + s.steady + 30,
        seed=s.seed + 2,
        processes=s.load_processes, verify_sample=0.0,
    )  # fmt: skip
    run = phases.start_load("load-overload", args, n)
    phases.say(f"overload: {n:,} clients on gateway-1 at {s.ramp:g}/s …")
    everyone = phases.wait([run], lambda r: r["synced"] >= r["connections"], n / s.ramp + s.wait_timeout)
    rss0, t0 = stack.gateway_rss(0), time.time()
    watched = phases.watch_gateway(s.steady)
    rss1, t1 = stack.gateway_rss(0), time.time()
    phases.rounds_past(t1, [run])
    rounds = run.rounds
    w = window(rounds, t0, t1)
    (a0, a1), (b0, b1) = thirds(t0, t1)
    first, last = latency_ms(window(rounds, a0, a1)), latency_ms(window(rounds, b0, b1))
    total = window(rounds, run.started - 1, t1)
    report = run.stop() or {}
    phases.stack.loads.pop(run.name, None)
    phases.final_reports[run.name] = report
    server1 = phases.gateway_counters()
    result = {
        "clients": n,
        "sources": s.overload_sources,
        "all_synced_in_time": everyone,
        "connected": w.open,
        "synced": w.synced,
        "refusals": total.count("refusals"),
        "refusals_503": total.count("refusals_503"),
        "refusals_429": total.count("refusals_429"),
        "refused_then_connected": total.count("refused_then_connected"),
        "connect_failures": total.count("connect_failures"),
        "gateway_refused": growth(server0, server1, "handshakes_refused"),
        "latency_ms": latency_block(w),
        "window_p99_first_third_ms": pct(first["window_to_receipt"], "p99_ms"),
        "window_p99_last_third_ms": pct(last["window_to_receipt"], "p99_ms"),
        "gateway_rss_mib": [round(rss0 / MIB, 1), round(rss1 / MIB, 1)],
        "connected_at_end": report.get("connected_at_end"),
        "generator_loop_lag_ms": w.loop_lag_ms,
        "gateway_health": watched,
    }
    lat = result["latency_ms"]["window_to_receipt"]
    phases.say(
        f"overload: {w.open:,}/{n:,} connected, {result['refusals']:,} refusals "
        f"({result['refused_then_connected']:,} got in later), window p99 {fmt(lat['p99_ms'])} ms"
    )
    return result
