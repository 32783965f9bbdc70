"""The phases of ``bookcast bench realistic``, run against a :class:`~bookcast.bench.realistic_stack.Stack`.

Each phase drives the real stack (``bookcast load`` children, SIGKILL, SIGSTOP/SIGCONT),
notes wall-clock instants, and hands the timelines and samples to the pure arithmetic of
:mod:`bookcast.bench.realistic_figures`. It returns a JSON-ready dict; a figure it could
not measure is None, never a guess.

1. ``ramp``: the clients open at ``--ramp`` per second; then a steady window.
2. ``storm``: the first gateway is SIGKILLed and started again; all of its clients
   reconnect at once (with ``since``); how long until every one is synced again.
3. ``pause``: md_service is SIGSTOPped under the live feed, then resumed; its consumer
   lag until it is back under the threshold, and the rate at which it caught up.
4. ``overload``: twice the clients on one gateway; who was refused, whether they got in.
5. ``synthetic``: ``bookcast bench fanout`` at the same client count, for comparison.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from bookcast.bench.realistic_figures import (
    CatchUp,
    LagSample,
    Window,
    catch_up,
    combined,
    cpu_cores,
    gauge_summary,
    latency_ms,
    prom_sum,
    storm_outcome,
    thirds,
    window,
)
from bookcast.bench.realistic_load import ROUND_S, LoadRun, load_args, wait_until
from bookcast.bench.realistic_settings import Settings
from bookcast.bench.realistic_stack import Stack, scrape
from bookcast.processes import TierProcess
from mdcore.instruments import NAMED_PAIRS

WINDOW_MS = 100  # md_service's default window: the goals' "per window"
MIB = 1024 * 1024
LAG_POLL_S = 0.1


def _pct(summary: dict[str, Any], key: str) -> float | None:
    return summary.get(key) if summary.get("count") else None


def _latency_block(w: Window) -> dict[str, Any]:
    lat = latency_ms(w)
    return {
        name: {k: _pct(s, k) for k in ("p50_ms", "p99_ms", "p99.9_ms", "max_ms")}
        | {"count": s.get("count", 0)}
        for name, s in lat.items()
    }


class Phases:
    """The run's loads and figures, phase after phase."""

    def __init__(self, settings: Settings, stack: Stack, workdir: Path, say: Callable[[str], None]) -> None:
        self.s = settings
        self.stack = stack
        self.workdir = workdir
        self.say = say
        self.loads: dict[str, LoadRun] = {}
        self.rss_before: list[int] = []
        self.ramp_started = 0.0
        self.final_reports: dict[str, dict[str, Any] | None] = {}  # each load's own --json report

    # --- helpers --------------------------------------------------------------------

    def _budget(self) -> float:
        """How long the phase-one loads may run at most: every selected phase's bound, and a margin."""
        s = self.s
        total = s.phase_one_clients / s.ramp + s.wait_timeout + s.settle + s.steady + 30
        if "storm" in s.phases:
            total += s.storm_clients / s.ramp + s.wait_timeout + s.storm_timeout + 10
        if "pause" in s.phases:
            total += s.pause + s.catch_up_timeout + 10
        return total

    def _start_load(self, name: str, args: list[str], connections: int) -> LoadRun:
        run = LoadRun(name, self.workdir, args, connections).start()
        self.loads[name] = run
        self.stack.loads[name] = run.process
        return run

    def _stop_loads(self) -> dict[str, dict[str, Any] | None]:
        """Stop every load at once (each closes its connections, a few seconds); their reports."""
        runs = list(self.loads.values())
        with ThreadPoolExecutor(max(1, len(runs))) as pool:
            reports = dict(zip([r.name for r in runs], pool.map(LoadRun.stop, runs), strict=True))
        for name in reports:
            self.final_reports[name] = reports[name]
            self.stack.loads.pop(name, None)
            del self.loads[name]
        return reports

    def _timelines(self) -> list[list[dict[str, Any]]]:
        return [run.rounds for run in self.loads.values()]

    def _wait(self, runs: list[LoadRun], done: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        return wait_until(runs, done, timeout, self.stack.check_alive)

    def _rounds_past(self, t: float, runs: list[LoadRun] | None = None, timeout: float = 15.0) -> None:
        """Wait until every load has written a round at or after ``t``, so a window can end there."""
        runs = list(self.loads.values()) if runs is None else runs
        self._wait(runs, lambda r: r["t"] >= t, timeout)

    def _sleep(self, seconds: float) -> None:
        """Sleep, but notice a tier that died meanwhile."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.stack.check_alive()
            time.sleep(min(0.25, left))

    def _watch_gateway(self, seconds: float, index: int = 0) -> dict[str, Any]:
        """Sleep ``seconds`` while sampling the gateway's loop lag and overload flag once a second."""
        port = self.stack.metrics[f"gateway-{index + 1}"]
        samples: list[tuple[float | None, float | None]] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.stack.check_alive()
            got = scrape(port, timeout=0.5)
            if got is None:
                samples.append((None, None))
            else:
                lag = prom_sum(got, "bookcast_gateway_loop_lag_seconds")
                samples.append((lag, prom_sum(got, "bookcast_gateway_overloaded")))
            time.sleep(max(0.0, min(1.0, end - time.monotonic())))
        return gauge_summary(samples)

    def _gateway_counters(self, index: int = 0) -> dict[str, float] | None:
        """The gateway's own counts (its /metrics); None if it did not answer within 3 s."""
        samples = scrape(self.stack.metrics[f"gateway-{index + 1}"], timeout=3.0)
        if samples is None:
            return None
        return {
            name: prom_sum(samples, "bookcast_gateway_counter_total", {"name": name}) or 0.0
            for name in (
                "frames_out",
                "deltas_out",
                "handshakes_refused",
                "refused_overloaded",
                "connections_opened",
            )
        }

    # --- 1. ramp and steady -----------------------------------------------------------

    def ramp(self) -> dict[str, Any]:
        s, stack = self.s, self.stack
        self.rss_before = [stack.gateway_rss(i) for i in range(len(stack.gateways))]
        budget = self._budget()
        main_args = load_args(
            stack.urls, s.clients, pairs=f"{s.pairs_min}-{s.pairs_max}", pool=s.pairs, zipf=s.zipf,
            all_pairs=s.all_pairs_clients, ramp=s.ramp, sources=s.source_list(), duration=budget, seed=s.seed,
            processes=s.load_processes, verify_sample=s.verify_sample,
        )  # fmt: skip
        runs = [self._start_load("load-main", main_args, s.clients + s.all_pairs_clients)]
        if s.demo_clients:
            demo_args = load_args(
                stack.urls[:1], s.demo_clients, pairs=",".join(NAMED_PAIRS), pool=s.pairs, ramp=s.ramp,
                sources=s.source_list(), duration=budget, seed=s.seed, processes=1, verify_sample=0.0,
            )  # fmt: skip
            runs.append(self._start_load("load-demo", demo_args, s.demo_clients))
        started = self.ramp_started = time.time()
        timeout = s.phase_one_clients / s.ramp + s.wait_timeout
        self.say(f"ramp: {s.phase_one_clients:,} clients at {s.ramp:g}/s from {s.sources} addresses …")
        self._wait(runs, lambda r: r["synced"] >= r["connections"], timeout)
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
        w = combined(self._timelines(), started - 1, ended)
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
            "handshake_ms": {k: _pct(lat["handshake"], k) for k in ("p50_ms", "p99_ms", "max_ms")},
            "first_sync_ms": {k: _pct(lat["first_sync"], k) for k in ("p50_ms", "p99_ms", "max_ms")},
        }
        self.say(
            f"ramp: {result['connected']:,} connected, {result['synced']:,} synced; "
            f"{result['connect_failures']} failures, {result['refusals']} refusals"
        )
        return result

    def steady(self) -> dict[str, Any]:
        s, stack = self.s, self.stack
        self._sleep(s.settle)
        rss = [stack.gateway_rss(i) for i in range(len(stack.gateways))]
        server0 = self._gateway_counters()
        cpu0, t0 = stack.cpu(), time.time()
        self.say(f"steady: measuring {s.steady:g} s …")
        watched = self._watch_gateway(s.steady)
        cpu1, t1 = stack.cpu(), time.time()
        server1 = self._gateway_counters()
        self._rounds_past(t1)
        w = combined(self._timelines(), t0, t1)
        cores = cpu_cores(cpu0, cpu1, t1 - t0)
        machine = cores.pop("machine")
        cores["other"] = max(0.0, machine - sum(cores.values()))
        clients_gw1 = self.clients_on_first_gateway()
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
            "frames_per_client_per_window": _per_window(everyone["frames_per_client_per_s"]),
            "deltas_per_frame": everyone["deltas_per_frame"],
            "groups": {
                name: {**g, "frames_per_client_per_window": _per_window(g["frames_per_client_per_s"])}
                for name, g in groups.items()
            },
            "latency_ms": _latency_block(w),
            "latency_ms_with_ramp": _latency_block(combined(self._timelines(), self.ramp_started - 1, t1)),
            "integrity": {
                k: w.count(k) for k in ("gaps", "resyncs", "stale", "checksum_failures", "disconnects")
            },
            "generator_loop_lag_ms": w.loop_lag_ms,
            "gateway_health": watched,
            "gateway_refused_overloaded": _diff(server0, server1, "refused_overloaded"),
            "cpu_cores": cores,
            "gateway_deltas_per_core": deltas / cores["gateways"] if cores.get("gateways") else None,
            "gateway_frames_per_core": w.rates.get("frames", 0.0) / cores["gateways"]
            if cores.get("gateways")
            else None,
            "gateway_frames_out_per_s": _diff(server0, server1, "frames_out", t1 - t0),
            "gateway_deltas_out_per_s": _diff(server0, server1, "deltas_out", t1 - t0),
            "gateway_rss_mib": [round(r / MIB, 1) for r in rss],
            "kib_per_connection": (rss[0] - self.rss_before[0]) / 1024 / clients_gw1
            if rss and rss[0]
            else None,
            "broker_rss_mib": round(stack.broker_rss() / MIB, 1),
            "clients_on_first_gateway": clients_gw1,
        }
        lat = result["latency_ms"]["window_to_receipt"]
        self.say(
            f"steady: {deltas:,.0f} deltas/s, {result['frames_per_s']:,.0f} frames/s, window p99 "
            f"{_fmt(lat['p99_ms'])} ms, gateway {cores.get('gateways', 0):.2f} cores"
        )
        return result

    def clients_on_first_gateway(self) -> int:
        """Phase one's clients on gateway-1: its round-robin share of the main load, and the demo clients."""
        s = self.s
        return -(-(s.clients + s.all_pairs_clients) // s.gateways) + s.demo_clients

    # --- 2. reconnect storm -----------------------------------------------------------

    def storm(self) -> dict[str, Any]:
        s, stack = self.s, self.stack
        on_first = self.clients_on_first_gateway()
        extra = max(0, s.storm_clients - on_first)
        if extra:
            self.say(
                f"storm: {extra:,} more clients on gateway-1, so that {on_first + extra:,} will reconnect …"
            )
            args = load_args(
                stack.urls[:1], extra, pairs=f"{s.pairs_min}-{s.pairs_max}", pool=s.pairs, zipf=s.zipf,
                ramp=s.ramp, sources=s.source_list(), duration=self._budget(), seed=s.seed + 1,
                processes=s.load_processes, verify_sample=0.0,
            )  # fmt: skip
            run = self._start_load("load-storm", args, extra)
            self._wait([run], lambda r: r["synced"] >= r["connections"], extra / s.ramp + s.wait_timeout)
        self._sleep(1.0)
        before = time.time()
        killed = stack.kill_gateway(0)
        self.say("storm: gateway-1 killed (SIGKILL), restarting …")
        launched, ready = stack.restart_gateway(0)
        deadline = launched + s.storm_timeout
        self._wait(list(self.loads.values()), lambda r: r["synced"] >= r["connections"] and r["t"] > launched,
                   max(0.0, deadline - time.time()))  # fmt: skip
        self._rounds_past(min(time.time(), deadline))
        timelines = self._timelines()
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
            "synced_after_ready_s": _minus(outcome.synced_after_s, ready - launched),
            "gone_for_good": outcome.gone,
            "timeout_s": s.storm_timeout,
            "resync_ms": {k: _pct(lat["resync"], k) for k in ("p50_ms", "p99_ms", "max_ms")},
            "subscribed_to_synced_ms": {
                k: _pct(lat["subscribed"], k) for k in ("p50_ms", "p99_ms", "max_ms")
            },
            "resynced": w.count("resynced"),
            "disconnects": w.count("disconnects"),
            "connect_failures": w.count("connect_failures"),
            "refusals": w.count("refusals"),
            "since_subscribes": w.count("since_subscribes"),
            "recovered": w.count("recovered_answers"),
            "not_recovered": w.count("recovery_misses"),
            "snapshots": w.count("snapshots"),
            "window_p99_ms": _pct(lat["window_to_receipt"], "p99_ms"),
        }
        self.say(
            f"storm: every client synced again {_fmt(result['synced_after_restart_s'], '.2f')} s after the "
            f"restart; {outcome.gone} gone for good"
        )
        return result

    # --- 3. md_service paused ---------------------------------------------------------

    def pause(self) -> dict[str, Any]:
        s, stack = self.s, self.stack
        md_port, feed_port = stack.metrics["md"], stack.metrics["feed"]
        md0 = scrape(md_port, timeout=3.0) or []
        feed0 = scrape(feed_port, timeout=3.0) or []
        consumed0 = prom_sum(md0, "bookcast_md_events_total") or 0.0
        epochs0 = prom_sum(md0, "bookcast_md_epochs_started_total") or 0.0
        delivered0 = prom_sum(feed0, "bookcast_feed_events_total") or 0.0
        stopped = stack.pause_md()
        self.say(f"pause: md_service stopped (SIGSTOP) for {s.pause:g} s under the live feed …")
        self._sleep(s.pause)
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
            outside = (
                max(0.0, delivered - consumed) if consumed is not None and delivered is not None else None
            )
            lag = prom_sum(md, "bookcast_md_consumer_lag") if md else None
            samples.append(LagSample(round(now, 3), lag, outside, consumed))
            outcome = catch_up(samples, s.lag_threshold, delivered1 - consumed0, consumed0)
            if outcome.seconds is not None:
                break
            time.sleep(LAG_POLL_S)
        outcome = outcome or catch_up(samples, s.lag_threshold, delivered1 - consumed0, consumed0)
        md1 = scrape(md_port, timeout=3.0) or []
        time.sleep(ROUND_S * 1.5)
        clients = combined(
            self._timelines(), resumed, resumed + (outcome.seconds or s.catch_up_timeout) + 1.0
        )
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
            "client_exchange_p99_ms": _pct(lat["exchange_to_receipt"], "p99_ms"),
            "client_window_p99_ms": _pct(lat["window_to_receipt"], "p99_ms"),
            "client_gaps": clients.count("gaps"),
            "lag_series": [[x.t, x.md_lag, x.outside_lag] for x in samples],
            # Why it did not catch up, in md_service's own words (its log is gone once the stack stops).
            "md_log_tail": None if outcome.seconds is not None else _log_tail(stack.md),
        }
        self.say(
            f"pause: backlog {outcome.backlog:,.0f} events; lag under {s.lag_threshold:,} "
            f"{_fmt(outcome.seconds, '.2f')} s after resuming ({_fmt(outcome.rate, ',.0f')} events/s)"
        )
        return result

    def end_phase_one(self) -> dict[str, dict[str, Any] | None]:
        """Stop the phase-one loads (they close their connections cleanly); their final reports."""
        return self._stop_loads()

    # --- 4. overload ------------------------------------------------------------------

    def overload(self) -> dict[str, Any]:
        s, stack = self.s, self.stack
        n = s.overload
        self._sleep(2.0)  # the closes of phase one are behind the gateway
        server0 = self._gateway_counters()
        args = load_args(
            stack.urls[:1], n, pairs=f"{s.pairs_min}-{s.pairs_max}", pool=s.pairs, zipf=s.zipf, ramp=s.ramp,
            sources=s.source_list(s.overload_sources), duration=n / s.ramp + s.wait_timeout + s.steady + 30,
            seed=s.seed + 2,
            processes=s.load_processes, verify_sample=0.0,
        )  # fmt: skip
        run = self._start_load("load-overload", args, n)
        self.say(f"overload: {n:,} clients on gateway-1 at {s.ramp:g}/s …")
        everyone = self._wait([run], lambda r: r["synced"] >= r["connections"], n / s.ramp + s.wait_timeout)
        rss0, t0 = stack.gateway_rss(0), time.time()
        watched = self._watch_gateway(s.steady)
        rss1, t1 = stack.gateway_rss(0), time.time()
        self._rounds_past(t1, [run])
        rounds = run.rounds
        w = window(rounds, t0, t1)
        (a0, a1), (b0, b1) = thirds(t0, t1)
        first, last = latency_ms(window(rounds, a0, a1)), latency_ms(window(rounds, b0, b1))
        total = window(rounds, run.started - 1, t1)
        report = run.stop() or {}
        self.stack.loads.pop(run.name, None)
        self.final_reports[run.name] = report
        server1 = self._gateway_counters()
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
            "gateway_refused": _diff(server0, server1, "handshakes_refused"),
            "latency_ms": _latency_block(w),
            "window_p99_first_third_ms": _pct(first["window_to_receipt"], "p99_ms"),
            "window_p99_last_third_ms": _pct(last["window_to_receipt"], "p99_ms"),
            "gateway_rss_mib": [round(rss0 / MIB, 1), round(rss1 / MIB, 1)],
            "connected_at_end": report.get("connected_at_end"),
            "generator_loop_lag_ms": w.loop_lag_ms,
            "gateway_health": watched,
        }
        lat = result["latency_ms"]["window_to_receipt"]
        self.say(
            f"overload: {w.open:,}/{n:,} connected, {result['refusals']:,} refusals "
            f"({result['refused_then_connected']:,} got in later), window p99 {_fmt(lat['p99_ms'])} ms"
        )
        return result


# --- 5. the synthetic benchmark at the same client count ---------------------------------


def synthetic(settings: Settings, clients: int, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """``bookcast bench fanout`` (its gateway pass only) at ``clients``: pair-deltas per gateway core."""
    path = workdir / "synthetic.json"
    args = ["bench", "fanout", "--clients", str(clients), "--servers", "gateway", "--seconds",
            f"{settings.synthetic_seconds:g}", "--saturation-clients", "0", "--json", str(path)]  # fmt: skip
    say(f"synthetic: bookcast bench fanout --clients {clients} --servers gateway … (no other stack running)")
    proc = TierProcess("synthetic", "bookcast", args)
    proc.start()
    deadline = time.monotonic() + 120 + 3 * settings.synthetic_seconds
    while proc.running and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.stop(timeout=10.0)
    try:
        runs = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {"clients": clients, "error": f"bench fanout wrote no report (status {proc.returncode})"}
    run = next((r for r in runs if r.get("server") == "gateway"), None)
    if run is None:
        return {"clients": clients, "error": "no gateway run in the bench fanout report"}
    cores = run.get("server_cpu") or 0.0
    return {
        "clients": clients,
        "pairs_per_client": 8,
        "seconds": settings.synthetic_seconds,
        "deltas_per_s": run.get("deltas_per_s"),
        "frames_per_s": run.get("frames_per_s"),
        "gateway_cores": cores,
        "deltas_per_core": run["deltas_per_s"] / cores if cores else None,
        "frames_per_core": run["frames_per_s"] / cores if cores else None,
        "window_p99_ms": (run.get("window_latency_ms") or {}).get("p99"),
    }


def _diff(
    before: dict[str, float] | None, after: dict[str, float] | None, name: str, seconds: float = 1.0
) -> float | None:
    """A gateway counter's growth (per second if ``seconds``); None if either reading is missing."""
    if before is None or after is None or seconds <= 0:
        return None
    return (after[name] - before[name]) / seconds


def _log_tail(proc: TierProcess | None, lines: int = 12) -> list[str] | None:
    if proc is None:
        return None
    try:
        return proc.log_tail(4096).splitlines()[-lines:]
    except Exception:  # a log that cannot be read costs the report a hint, not the run
        return None


def _minus(value: float | None, minus: float) -> float | None:
    return None if value is None else value - minus


def _per_window(per_s: float | None) -> float | None:
    return None if per_s is None else per_s * WINDOW_MS / 1000


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and not math.isfinite(value))
        else format(value, spec)
    )
