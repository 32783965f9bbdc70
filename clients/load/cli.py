"""``bookcast load``: the parent process — settings, limits, workers, progress, the report.

The parent holds no connection. It raises the open-files limit (the workers inherit it),
lays out connections over worker processes (spawned, so nothing is forked mid-thread),
starts them together, prints one progress line for all of them, turns Ctrl-C/SIGTERM into
a clean stop, merges their counters and histograms and prints the report (and writes it
as JSON with ``--json``). With ``--timeline FILE`` it also writes every round of the
workers' reports as one JSON line (:mod:`clients.load.timeline`), which is how a benchmark
driving the command (``bookcast bench realistic``) reads what happened when.

Exit codes: 0 the run completed and received data; 1 nothing could be received (no
connection, or no frame at all), or a worker failed; 2 bad settings or limits.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import queue
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from clients.load.config import LoadConfig, build_parser, fetch_pool, load_config, plan_workers
from clients.load.limits import ephemeral_ports, needed_per_process, raise_fd_limit
from clients.load.report import LoadReport, WorkerResult, progress_line
from clients.load.stats import ConnTimes, GroupTally, Latencies, LoadCounters, clear
from clients.load.status import StatusPublisher, load_status
from clients.load.timeline import Timeline
from clients.load.worker import WorkerPlan, worker_main
from mdcore.settings import SettingError
from mdruntime.children import wait_children_ready
from mdruntime.logs import setup_logging

log = logging.getLogger("clients.load")

READY_TIMEOUT = 60.0  # seconds for every worker to start
START_MARGIN = 0.1  # seconds between the start signal and the common start instant
FINISH_GRACE = 30.0  # seconds past --duration after which workers are told to stop, then killed


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help or a usage error, already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    try:
        cfg = load_config(args, os.environ)
    except SettingError as exc:
        print(f"bookcast load: {exc}", file=sys.stderr)
        return 2
    setup_logging("load", cfg.log_level, with_name=False)
    try:
        pool = cfg.pool if cfg.pool is not None or cfg.pairs is not None else fetch_pool(cfg.urls[0])
        plans = plan_workers(cfg, pool or ())
    except SettingError as exc:
        print(f"bookcast load: {exc}", file=sys.stderr)
        return 2
    if not check_limits(cfg, len(plans)):
        return 2
    stopped: list[bool] = []
    restore = _on_stop_signals(lambda: stopped.append(True))
    try:
        report = run(cfg, plans, lambda: bool(stopped))
    except RuntimeError as exc:
        print(f"bookcast load: {exc}", file=sys.stderr)
        return 1
    finally:
        restore()
    for line in report.table():
        print(line)
    if cfg.json_report:
        Path(cfg.json_report).write_bytes(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2))
    totals = report.totals
    if totals.connects == 0 or totals.frames == 0:
        print("bookcast load: no data was received; is a gateway running at the URL?", file=sys.stderr)
        return 1
    return 0


def check_limits(cfg: LoadConfig, processes: int) -> bool:
    """Raise the open-files limit for the workers; False (after explaining) if it cannot be enough."""
    total = cfg.total_connections
    limit = raise_fd_limit(needed_per_process(total, processes))
    if limit.soft != limit.soft_before:
        log.info("raised the open-files limit from %d to %d", limit.soft_before, limit.soft)
    if not limit.enough:
        print(f"bookcast load: {limit.explain(total, processes)}", file=sys.stderr)
        return False
    ports = ephemeral_ports()
    routes = math.lcm(len(cfg.urls), max(1, len(cfg.sources)))  # distinct (source, URL) combinations
    per_route = -(-total // routes)
    if ports is not None and per_route > ports:
        print(
            f"bookcast load: warning: {per_route:,} connections from one local address to one "
            f"address:port but only {ports:,} local ports (net.ipv4.ip_local_port_range): give "
            "several --url or --source addresses (such as 127.0.0.2), or widen the range",
            file=sys.stderr,
        )
    return True


def run(cfg: LoadConfig, plans: list[WorkerPlan], stop_requested: Callable[[], bool]) -> LoadReport:
    """Start the workers together, show progress, collect and merge their results."""
    ctx = multiprocessing.get_context("spawn")
    stop, go = ctx.Event(), ctx.Event()
    start_at = ctx.Value("d", 0.0)
    results: Any = ctx.Queue()
    level = logging.getLogger().getEffectiveLevel()
    workers = [
        ctx.Process(
            target=worker_main,
            args=(plan, stop, go, start_at, results, level, os.getpid()),
            name=f"bookcast-load-{plan.worker}",
            daemon=True,
        )
        for plan in plans
    ]
    for process in workers:
        process.start()
    finals: dict[int, dict[str, Any]] = {}
    status = (
        StatusPublisher(cfg.redis_url, cfg.redis_prefix, cfg.status_id, cfg.report_interval)
        if cfg.redis_url
        else None
    )
    timeline = Timeline.open(cfg.timeline) if cfg.timeline else None
    try:
        wait_children_ready(results, workers, READY_TIMEOUT, "load worker", "load workers")
        start_at.value = time.monotonic() + START_MARGIN
        go.set()
        progress = _Progress(cfg, start_at.value, status, timeline)
        overdue = start_at.value + cfg.duration + FINISH_GRACE
        while len(finals) < len(plans):
            now = time.monotonic()
            if stop_requested() or now > overdue:
                stop.set()
            if now > overdue + FINISH_GRACE:
                raise RuntimeError(f"{len(plans) - len(finals)} load worker(s) did not finish; stopped them")
            try:
                kind, worker, payload = results.get(timeout=0.2)
            except queue.Empty:
                if any(not p.is_alive() and p.exitcode not in (0, None) for p in workers):
                    raise RuntimeError("a load worker died; see its output above") from None
                continue
            if kind == "progress":
                progress.add(worker, payload)
            elif kind == "done":
                finals[worker] = payload
            elif kind == "error":
                raise RuntimeError(f"load worker {worker} failed: {payload}")
    finally:
        if status is not None:
            status.close()
        if timeline is not None:
            timeline.close()
        stop.set()
        go.set()
        for process in workers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
    latencies = Latencies()
    times = ConnTimes()
    results_list = []
    for index in range(len(plans)):
        final = finals[index]
        latencies.add_encoded(final["latencies"])
        times.add_encoded(final["times"])
        results_list.append(
            WorkerResult(
                index, LoadCounters.from_dict(final["counters"]), final["elapsed"], final["cpu_seconds"],
                final["connections"], final["connected_at_end"], final["all_open_after"],
                final["synced_at_end"], {g: GroupTally(**t) for g, t in final["groups"].items()},
                final["loop_lag_max_ms"],
            )
        )  # fmt: skip
    return LoadReport(
        urls=cfg.urls,
        connections=cfg.total_connections,
        pairs_per_connection=pairs_label(cfg),
        duration=cfg.duration,
        workers=results_list,
        latencies=latencies,
        verifying_connections=sum(spec.verify for plan in plans for spec in plan.specs),
        times=times,
    )


def pairs_label(cfg: LoadConfig) -> str:
    """What each connection follows, for the report: ``3``, ``1-5 drawn (zipf 1)`` (+ all-pairs ones)."""
    if cfg.pairs is not None:
        label = str(len(cfg.pairs))
    elif cfg.pairs_max > cfg.pairs_per_connection:
        label = f"{cfg.pairs_per_connection}-{cfg.pairs_max}"
    else:
        label = str(cfg.pairs_per_connection)
    if cfg.zipf is not None:
        label += f" drawn (zipf {cfg.zipf:g})"
    if cfg.all_pairs:
        label += f", +{cfg.all_pairs} on every pair"
    return label


class _Progress:
    """Merges the workers' reports: one status per round (with a bus), one line per progress interval."""

    def __init__(
        self,
        cfg: LoadConfig,
        start: float,
        status: StatusPublisher | None = None,
        timeline: Timeline | None = None,
    ) -> None:
        self._cfg = cfg
        self._start = start
        self._status = status
        self._timeline = timeline
        self._counters: dict[int, LoadCounters] = {}
        self._open: dict[int, int] = {}
        self._synced: dict[int, int] = {}
        self._synced_ns: dict[int, int] = {}
        self._all_open: dict[int, float | None] = {}
        self._loop_lag: dict[int, float] = {}
        self._groups: dict[int, dict[str, dict[str, int]]] = {}
        self._times = ConnTimes()  # this round's handshakes and syncs
        self._interval = Latencies()  # this round's
        self._line = Latencies()  # since the last progress line
        self._last = LoadCounters()
        self._last_time = start
        self._round_last = LoadCounters()
        self._round_time = start
        self._seen: set[int] = set()

    def add(self, worker: int, payload: dict[str, Any]) -> None:
        self._counters[worker] = LoadCounters.from_dict(payload["counters"])
        self._open[worker] = payload["open"]
        self._interval.add_encoded(payload["latencies"])
        if "times" in payload:
            self._times.add_encoded(payload["times"])
        self._synced[worker] = payload.get("synced", 0)
        self._synced_ns[worker] = payload.get("synced_ns", 0)
        self._all_open[worker] = payload.get("all_open_after")
        self._loop_lag[worker] = payload.get("loop_lag_ms", 0.0)
        self._groups[worker] = payload.get("groups", {})
        self._seen.add(worker)
        if len(self._seen) == self._workers_expected():
            self._round()

    def _workers_expected(self) -> int:
        return self._cfg.worker_count

    def _round(self) -> None:
        now = time.monotonic()
        total = LoadCounters()
        for counters in self._counters.values():
            total.add(counters)
        if self._status is not None:
            self._status.publish(
                load_status(
                    self._status.instance, time.time_ns() // 1_000_000, round(now - self._round_time, 3),
                    total, self._round_last, sum(self._open.values()), self._cfg.connections, self._interval,
                )
            )  # fmt: skip
        if self._timeline is not None:
            self._timeline.write(
                elapsed=now - self._start, open_now=sum(self._open.values()),
                synced=sum(self._synced.values()), connections=self._cfg.total_connections,
                synced_ns=max(self._synced_ns.values(), default=0), counters=total,
                latencies=self._interval, times=self._times, groups=self._merged_groups(),
                all_open_after=self._all_open_after(), loop_lag_ms=max(self._loop_lag.values(), default=0.0),
            )  # fmt: skip
        self._round_last, self._round_time = total, now
        self._line.add(self._interval)
        clear(self._interval)
        self._times.reset()
        self._seen.clear()
        if now - self._last_time < self._cfg.progress_interval - self._cfg.report_interval / 2:
            return  # rounds come faster than lines when there is a status bus
        if not self._cfg.quiet:
            line = progress_line(
                now - self._start, sum(self._open.values()), self._cfg.connections, total, self._last,
                now - self._last_time, self._line,
            )  # fmt: skip
            print(line, file=sys.stderr, flush=True)
        self._last, self._last_time = total, now
        clear(self._line)

    def _all_open_after(self) -> float | None:
        """Seconds from the start until every worker had opened each of its connections once."""
        values = [self._all_open.get(w) for w in range(self._workers_expected())]
        return None if any(v is None for v in values) else max(v for v in values if v is not None)

    def _merged_groups(self) -> dict[str, GroupTally]:
        merged: dict[str, GroupTally] = {}
        for groups in self._groups.values():
            for name, tally in groups.items():
                merged.setdefault(name, GroupTally()).add(GroupTally(**tally))
        return merged


def _on_stop_signals(callback: Callable[[], None]) -> Callable[[], None]:
    """SIGINT and SIGTERM call ``callback`` (a clean stop); returns the function that undoes it."""

    def handle(_signum: int, _frame: FrameType | None) -> None:
        callback()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
