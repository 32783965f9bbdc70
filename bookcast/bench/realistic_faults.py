"""Phases 2 and 3 of ``bookcast bench realistic``: a tier fails under the phase-one clients.

``storm``: the first gateway is SIGKILLed and started again, and all of its clients reconnect at
once; ``pause``: md_service is SIGSTOPped under the live feed and resumed, and must catch up.
Both measure recovery as a user sees it. See :mod:`bookcast.bench.realistic_phases`.
"""

from __future__ import annotations

import time
from typing import Any

from bookcast.bench.realistic_figures import (
    CatchUp,
    LagSample,
    catch_up,
    combined,
    latency_ms,
    prom_sum,
    storm_outcome,
)
from bookcast.bench.realistic_load import ROUND_S, load_args
from bookcast.bench.realistic_phases import Phases, fmt, log_tail, minus, pct
from bookcast.bench.realistic_stack import scrape

LAG_POLL_S = 0.1


def storm(phases: Phases) -> dict[str, Any]:
    """SIGKILL gateway-1 and start it again; how long until all of its clients are synced again."""
    s, stack = phases.s, phases.stack
    on_first = phases.clients_on_first_gateway()
    extra = max(0, s.storm_clients - on_first)
    if extra:
        phases.say(
            f"storm: {extra:,} more clients on gateway-1, so that {on_first + extra:,} will reconnect …"
        )
        args = load_args(
            stack.urls[:1], extra, pairs=f"{s.pairs_min}-{s.pairs_max}", pool=s.pairs, zipf=s.zipf,
            ramp=s.ramp, sources=s.source_list(), duration=phases.budget(), seed=s.seed + 1,
            processes=s.load_processes, verify_sample=0.0,
        )  # fmt: skip
        run = phases.start_load("load-storm", args, extra)
        phases.wait([run], lambda r: r["synced"] >= r["connections"], extra / s.ramp + s.wait_timeout)
    phases.sleep(1.0)
    before = time.time()
    killed = stack.kill_gateway(0)
    phases.say("storm: gateway-1 killed (SIGKILL), restarting …")
    launched, ready = stack.restart_gateway(0)
    deadline = launched + s.storm_timeout
    phases.wait(list(phases.loads.values()), lambda r: r["synced"] >= r["connections"] and r["t"] > launched,
               max(0.0, deadline - time.time()))  # fmt: skip
    phases.rounds_past(min(time.time(), deadline))
    timelines = phases.timelines()
    outcome = storm_outcome(timelines, launched, deadline)
    end = min(time.time(), deadline)
    if outcome.synced_after_s is not None:
        end = launched + outcome.synced_after_s + ROUND_S
    w = combined(timelines, before, end)
    lat = latency_ms(w)
    result = {
        "clients_of_killed_gateway": on_first + extra,
        "extra_clients": extra,
        "clients": outcome.clients,
        "restart_after_kill_s": launched - killed,
        "ready_after_launch_s": ready - launched,
        "synced_after_restart_s": outcome.synced_after_s,
        "synced_after_ready_s": minus(outcome.synced_after_s, ready - launched),
        "gone_for_good": outcome.gone,
        "timeout_s": s.storm_timeout,
        "resync_ms": {k: pct(lat["resync"], k) for k in ("p50_ms", "p99_ms", "max_ms")},
        "subscribed_to_synced_ms": {k: pct(lat["subscribed"], k) for k in ("p50_ms", "p99_ms", "max_ms")},
        "resynced": w.count("resynced"),
        "disconnects": w.count("disconnects"),
        "connect_failures": w.count("connect_failures"),
        "refusals": w.count("refusals"),
        "since_subscribes": w.count("since_subscribes"),
        "recovered": w.count("recovered_answers"),
        "not_recovered": w.count("recovery_misses"),
        "snapshots": w.count("snapshots"),
        "window_p99_ms": pct(lat["window_to_receipt"], "p99_ms"),
    }
    phases.say(
        f"storm: every client synced again {fmt(result['synced_after_restart_s'], '.2f')} s after the "
        f"restart; {outcome.gone} gone for good"
    )
    return result


def pause(phases: Phases) -> dict[str, Any]:
    """SIGSTOP md_service for ``--pause`` s under the live feed, then resume it; how it catches up."""
    s, stack = phases.s, phases.stack
    md_port, feed_port = stack.metrics["md"], stack.metrics["feed"]
    md0 = scrape(md_port, timeout=3.0) or []
    feed0 = scrape(feed_port, timeout=3.0) or []
    consumed0 = prom_sum(md0, "bookcast_md_events_total") or 0.0
    epochs0 = prom_sum(md0, "bookcast_md_epochs_started_total") or 0.0
    delivered0 = prom_sum(feed0, "bookcast_feed_events_total") or 0.0
    stopped = stack.pause_md()
    phases.say(f"pause: md_service stopped (SIGSTOP) for {s.pause:g} s under the live feed …")
    phases.sleep(s.pause)
    delivered1 = prom_sum(scrape(feed_port, timeout=3.0) or [], "bookcast_feed_events_total") or 0.0
    resumed = stack.resume_md()
    live_rate = (delivered1 - delivered0) / (resumed - stopped)
    samples: list[LagSample] = []
    deadline = resumed + s.catch_up_timeout
    outcome: CatchUp | None = None
    while time.time() < deadline:
        stack.check_alive()
        md = scrape(md_port, timeout=0.5)
        feed = scrape(feed_port, timeout=0.5)
        now = time.time() - resumed
        consumed = prom_sum(md, "bookcast_md_events_total") if md else None
        delivered = prom_sum(feed, "bookcast_feed_events_total") if feed else None
        outside = max(0.0, delivered - consumed) if consumed is not None and delivered is not None else None
        lag = prom_sum(md, "bookcast_md_consumer_lag") if md else None
        samples.append(LagSample(round(now, 3), lag, outside, consumed))
        outcome = catch_up(samples, s.lag_threshold, delivered1 - consumed0, consumed0)
        if outcome.seconds is not None:
            break
        time.sleep(LAG_POLL_S)
    outcome = outcome or catch_up(samples, s.lag_threshold, delivered1 - consumed0, consumed0)
    md1 = scrape(md_port, timeout=3.0) or []
    time.sleep(ROUND_S * 1.5)
    clients = combined(phases.timelines(), resumed, resumed + (outcome.seconds or s.catch_up_timeout) + 1.0)
    lat = latency_ms(clients)
    result = {
        "paused_s": resumed - stopped,
        "live_rate": live_rate,
        "backlog": outcome.backlog,
        "caught_up_after_s": outcome.seconds,
        "threshold": s.lag_threshold,
        "catch_up_rate": outcome.rate,
        "catch_up_vs_live": outcome.rate / live_rate if outcome.rate and live_rate else None,
        "peak_lag": outcome.peak_lag,
        "new_epochs": (prom_sum(md1, "bookcast_md_epochs_started_total") or epochs0) - epochs0,
        "client_exchange_p99_ms": pct(lat["exchange_to_receipt"], "p99_ms"),
        "client_window_p99_ms": pct(lat["window_to_receipt"], "p99_ms"),
        "client_gaps": clients.count("gaps"),
        "lag_series": [[x.t, x.md_lag, x.outside_lag] for x in samples],
        # Why it did not catch up, in md_service's own words (its log is gone once the stack stops).
        "md_log_tail": None if outcome.seconds is not None else log_tail(stack.md),
    }
    phases.say(
        f"pause: backlog {outcome.backlog:,.0f} events; lag under {s.lag_threshold:,} "
        f"{fmt(outcome.seconds, '.2f')} s after resuming ({fmt(outcome.rate, ',.0f')} events/s)"
    )
    return result
