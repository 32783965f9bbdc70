"""What the phases of ``bookcast bench realistic`` share, and where each phase lives.

Each phase drives the real stack (:class:`~bookcast.bench.realistic_stack.Stack`: ``bookcast
load`` children, SIGKILL, SIGSTOP/SIGCONT), notes wall-clock instants, and hands the timelines
and samples to the pure arithmetic of :mod:`bookcast.bench.realistic_figures`. It returns a
JSON-ready dict; a figure it could not measure is None, never a guess. Every phase is a function
of :class:`Phases`, the loads and reports they share:

1. ``ramp`` (:mod:`~bookcast.bench.realistic_ramp`): the clients open at ``--ramp`` per
   second; then ``steady``, a steady window.
2. ``storm`` (:mod:`~bookcast.bench.realistic_faults`): the first gateway is SIGKILLed and
   started again; all of its clients reconnect at once (with ``since``); how long until every
   one is synced again.
3. ``pause`` (:mod:`~bookcast.bench.realistic_faults`): md_service is SIGSTOPped under the live
   feed, then resumed; its consumer lag until it is back under the threshold, and the rate at
   which it caught up.
4. ``overload`` (:mod:`~bookcast.bench.realistic_overload`): twice the clients on one gateway;
   who was refused, whether they got in.
5. ``synthetic`` (:mod:`~bookcast.bench.realistic_synthetic`): ``bookcast bench fanout`` at the
   same client count, for comparison.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bookcast.bench.realistic_figures import Window, gauge_summary, latency_ms, prom_sum
from bookcast.bench.realistic_load import LoadRun, wait_until
from bookcast.bench.realistic_settings import Settings
from bookcast.bench.realistic_stack import Stack, scrape
from bookcast.processes import TierProcess

WINDOW_MS = 100  # md_service's default window: the goals' "per window"
MIB = 1024 * 1024


def pct(summary: dict[str, Any], key: str) -> float | None:
    """One percentile of a latency summary, or None if it counted nothing."""
    return summary.get(key) if summary.get("count") else None


def latency_block(w: Window) -> dict[str, Any]:
    """Every latency of a window as the report shows it: percentiles and a count per kind."""
    lat = latency_ms(w)
    return {
        name: {k: pct(s, k) for k in ("p50_ms", "p99_ms", "p99.9_ms", "max_ms")}
        | {"count": s.get("count", 0)}
        for name, s in lat.items()
    }


class Phases:
    """What every phase shares: the settings, the stack, the loads running on it and their reports."""

    def __init__(self, settings: Settings, stack: Stack, workdir: Path, say: Callable[[str], None]) -> None:
        self.s = settings
        self.stack = stack
        self.workdir = workdir
        self.say = say
        self.loads: dict[str, LoadRun] = {}
        self.rss_before: list[int] = []
        self.ramp_started = 0.0
        self.final_reports: dict[str, dict[str, Any] | None] = {}  # each load's own --json report

    def budget(self) -> float:
        """How long the phase-one loads may run at most: every selected phase's bound, and a margin."""
        s = self.s
        total = s.phase_one_clients / s.ramp + s.wait_timeout + s.settle + s.steady + 30
        if "storm" in s.phases:
            total += s.storm_clients / s.ramp + s.wait_timeout + s.storm_timeout + 10
        if "pause" in s.phases:
            total += s.pause + s.catch_up_timeout + 10
        return total

    def start_load(self, name: str, args: list[str], connections: int) -> LoadRun:
        run = LoadRun(name, self.workdir, args, connections).start()
        self.loads[name] = run
        self.stack.loads[name] = run.process
        return run

    def timelines(self) -> list[list[dict[str, Any]]]:
        return [run.rounds for run in self.loads.values()]

    def wait(self, runs: list[LoadRun], done: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        return wait_until(runs, done, timeout, self.stack.check_alive)

    def rounds_past(self, t: float, runs: list[LoadRun] | None = None, timeout: float = 15.0) -> None:
        """Wait until every load has written a round at or after ``t``, so a window can end there."""
        runs = list(self.loads.values()) if runs is None else runs
        self.wait(runs, lambda r: r["t"] >= t, timeout)

    def sleep(self, seconds: float) -> None:
        """Sleep, but notice a tier that died meanwhile."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.stack.check_alive()
            time.sleep(min(0.25, left))

    def watch_gateway(self, seconds: float, index: int = 0) -> dict[str, Any]:
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

    def gateway_counters(self, index: int = 0) -> dict[str, float] | None:
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

    def clients_on_first_gateway(self) -> int:
        """Phase one's clients on gateway-1: its round-robin share of the main load, and the demo clients."""
        s = self.s
        return -(-(s.clients + s.all_pairs_clients) // s.gateways) + s.demo_clients

    def end_phase_one(self) -> dict[str, dict[str, Any] | None]:
        """Stop the phase-one loads at once (each closes its connections, a few seconds); their reports."""
        runs = list(self.loads.values())
        with ThreadPoolExecutor(max(1, len(runs))) as pool:
            reports = dict(zip([r.name for r in runs], pool.map(LoadRun.stop, runs), strict=True))
        for name in reports:
            self.final_reports[name] = reports[name]
            self.stack.loads.pop(name, None)
            del self.loads[name]
        return reports


def growth(
    before: dict[str, float] | None, after: dict[str, float] | None, name: str, seconds: float = 1.0
) -> float | None:
    """A gateway counter's growth (per second if ``seconds``); None if either reading is missing."""
    if before is None or after is None or seconds <= 0:
        return None
    return (after[name] - before[name]) / seconds


def log_tail(proc: TierProcess | None, lines: int = 12) -> list[str] | None:
    """The last lines of a tier's log, for the report (the log is gone once the stack stops)."""
    if proc is None:
        return None
    try:
        return proc.log_tail(4096).splitlines()[-lines:]
    except Exception:  # a log that cannot be read costs the report a hint, not the run
        return None


def minus(value: float | None, amount: float) -> float | None:
    """``value - amount``, or None if the value was not measured."""
    return None if value is None else value - amount


def per_window(per_s: float | None) -> float | None:
    """A per-second rate as a per-window count (md_service's default 100 ms window)."""
    return None if per_s is None else per_s * WINDOW_MS / 1000


def fmt(value: float | None, spec: str = ".1f") -> str:
    """A figure for a progress line: ``-`` when it was not measured."""
    return (
        "-"
        if value is None or (isinstance(value, float) and not math.isfinite(value))
        else format(value, spec)
    )
