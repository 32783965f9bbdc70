"""One load-generator process: many connections on one event loop, reporting to the parent.

Each connection is kept open for the whole run: opened (at most ``open_concurrency`` at a
time, paced by the ramp), reopened with jittered backoff if it fails or drops, and after a
drop subscribed with ``since`` so the gateway can replay what it missed. A handshake the
gateway refuses for load (HTTP 503/429) is counted apart from failures and retried no
sooner than its ``Retry-After``, with jitter above it. Every ``interval`` seconds the
process sends the parent its counters, the latencies of the interval and how many of its
connections are synced; at the end it closes every connection cleanly and sends its
totals, with its histograms encoded so the parent can merge them exactly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import resource
import signal
import time
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import InvalidHandshake
from websockets.uri import parse_uri

from clients.backoff import Backoff
from clients.load.checker import StreamChecker
from clients.load.connection import LoadConnection, open_connection
from clients.load.stats import ConnTimes, GroupTally, Latencies, LoadCounters, clear
from clients.refusal import handshake_refusal
from mdruntime.children import die_with_parent
from mdruntime.logs import setup_logging

log = logging.getLogger("clients.load")

RECONNECT = Backoff(initial=0.2, maximum=5.0)
CLOSE_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class ConnSpec:
    """What one connection does: where it connects and which pairs it follows."""

    index: int
    url: str
    pairs: tuple[str, ...]
    verify: bool  # keep full books and verify every checksum (a sample of connections)
    source: str | None = None  # local address to connect from (None: the system's choice)
    group: str = "spread"  # how its pairs were chosen (spread, drawn, listed, all-pairs): reported apart


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    worker: int
    specs: tuple[ConnSpec, ...]
    duration: float
    interval: float
    open_timeout: float
    open_concurrency: int
    ramp: float  # connections per second for this process; 0: as fast as the concurrency allows


class Worker:
    """The connections of one process and what they counted."""

    def __init__(self, plan: WorkerPlan) -> None:
        self.plan = plan
        self.counters = LoadCounters()
        self.interval = Latencies()  # the checkers record here; folded into `total` per interval
        self.total = Latencies()
        self.times = ConnTimes()  # handshakes and syncs of the interval, folded into `total_times`
        self.total_times = ConnTimes()
        self.groups: dict[str, GroupTally] = {}
        self.checkers: list[StreamChecker] = []
        for spec in plan.specs:
            tally = self.groups.setdefault(spec.group, GroupTally())
            tally.connections += 1
            self.checkers.append(
                StreamChecker(spec.pairs, self.counters, self.interval, spec.verify, self.times, tally)
            )
        self.open: set[LoadConnection] = set()
        self.all_open_at: float | None = None
        self.loop_lag_max = 0.0  # seconds: how late the worker's loop ran its timer, at worst
        self.loop_lag_round = 0.0  # … since the last report
        self._started = 0.0
        self._opened_once = 0
        self._ending = False

    async def run(self, stop: Any, report: Any, start_at: float) -> dict[str, Any]:
        """Run until the duration ends or ``stop`` is set; returns the final report fields."""
        plan = self.plan
        loop = asyncio.get_running_loop()
        delay = start_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        started = self._started = time.monotonic()
        cpu0 = _cpu_seconds()
        gate = asyncio.Semaphore(plan.open_concurrency)
        tasks = [
            loop.create_task(
                self._keep_open(spec, checker, gate, started + (i / plan.ramp if plan.ramp else 0.0))
            )
            for i, (spec, checker) in enumerate(zip(plan.specs, self.checkers, strict=True))
        ]
        deadline = started + plan.duration
        next_report = started + plan.interval
        while True:
            now = time.monotonic()
            if now >= deadline or stop.is_set():
                break
            nap = min(0.05, deadline - now)
            await asyncio.sleep(nap)
            late = time.monotonic() - now - nap  # the loop was busy (or the process starved) this long
            self.loop_lag_max = max(self.loop_lag_max, late)
            self.loop_lag_round = max(self.loop_lag_round, late)
            if time.monotonic() >= next_report:
                report(self._progress())
                next_report = max(next_report + plan.interval, time.monotonic())
        elapsed = time.monotonic() - started
        cpu = _cpu_seconds() - cpu0
        connected = len(self.open)
        self._ending = True
        await self._close_all(tasks)
        self.total.add(self.interval)
        self.total_times.add(self.times)
        return {
            "counters": self.counters.as_dict(),
            "latencies": self.total.encode(),
            "times": self.total_times.encode(),
            "groups": {name: tally.as_dict() for name, tally in self.groups.items()},
            "elapsed": elapsed,
            "cpu_seconds": cpu,
            "connections": len(plan.specs),
            "connected_at_end": connected,
            "synced_at_end": self.synced_count(),
            "all_open_after": None if self.all_open_at is None else self.all_open_at - started,
            "loop_lag_max_ms": round(self.loop_lag_max * 1000, 1),
        }

    def synced_count(self) -> int:
        """Connections whose every pair is synced right now."""
        return sum(1 for checker in self.checkers if checker.waiting == 0)

    def _progress(self) -> dict[str, Any]:
        encoded, times = self.interval.encode(), self.times.encode()
        self.total.add(self.interval)
        self.total_times.add(self.times)
        clear(self.interval)
        self.times.reset()
        return {
            "counters": self.counters.as_dict(),
            "latencies": encoded,
            "times": times,
            "open": len(self.open),
            "synced": self.synced_count(),
            "synced_ns": max((c.synced_ns for c in self.checkers), default=0),
            "groups": {name: tally.as_dict() for name, tally in self.groups.items()},
            "all_open_after": None if self.all_open_at is None else self.all_open_at - self._started,
            "loop_lag_ms": round(self._take_lag() * 1000, 1),
        }

    def _take_lag(self) -> float:
        lag, self.loop_lag_round = self.loop_lag_round, 0.0
        return lag

    async def _keep_open(
        self, spec: ConnSpec, checker: StreamChecker, gate: asyncio.Semaphore, not_before: float
    ) -> None:
        """Hold one connection open for the whole run, reopening it when it fails or drops."""
        uri = parse_uri(spec.url)
        rand = random.Random(spec.index)
        attempt = 0
        refused = False
        delay = not_before - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        checker.started_ns = time.time_ns()
        while not self._ending:
            try:
                async with gate:
                    began = time.monotonic_ns()
                    connection = await open_connection(uri, checker, self.plan.open_timeout, spec.source)
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                wait, was_refused = self._failed(spec, exc, attempt, rand)
                refused = refused or was_refused
                attempt += 1
                await asyncio.sleep(wait)
                continue
            ConnTimes.record(self.times.handshake, time.monotonic_ns() - began)
            self.counters.connects += 1
            if refused:
                self.counters.refused_then_connected += 1
                refused = False
            self.open.add(connection)
            checker.tally.open += 1
            self._opened_once += 1
            if self._opened_once == len(self.plan.specs) and self.all_open_at is None:
                self.all_open_at = time.monotonic()
            attempt = 0
            try:
                await connection.closed
            finally:
                self.open.discard(connection)
                checker.tally.open -= 1
            if connection.closing or self._ending:
                return
            checker.connection_lost(time.time_ns())
            self.counters.disconnects += 1
            await asyncio.sleep(RECONNECT.delay(0, rand.random))

    def _failed(
        self, spec: ConnSpec, exc: BaseException, attempt: int, rand: random.Random
    ) -> tuple[float, bool]:
        """Count a failed attempt: (seconds to wait before the next, whether it was a refusal for load).

        A refusal's ``Retry-After`` is the floor of the wait, with jitter above it.
        """
        counters = self.counters
        refusal = handshake_refusal(exc)
        if refusal is not None:
            counters.refusals += 1
            if refusal.status == 503:
                counters.refusals_503 += 1
            elif refusal.status == 429:
                counters.refusals_429 += 1
            if counters.refusals <= 3 or counters.refusals % 1000 == 0:
                log.info("connection %d refused (%d, Retry-After %s)", spec.index, refusal.status,
                         refusal.retry_after)  # fmt: skip
            return RECONNECT.after_refusal(attempt, refusal.retry_after, rand.random), True
        counters.connect_failures += 1
        if counters.connect_failures <= 5 or counters.connect_failures % 1000 == 0:
            log.warning("connection %d to %s failed: %s", spec.index, spec.url, exc or type(exc).__name__)
        return RECONNECT.delay(attempt, rand.random), False

    async def _close_all(self, tasks: list[asyncio.Task[None]]) -> None:
        """Close every connection cleanly (1000), abort what does not close in time."""
        connections = list(self.open)
        for connection in connections:
            connection.close()
        waiting = [c.closed for c in connections]
        if waiting:
            await asyncio.wait(waiting, timeout=CLOSE_TIMEOUT)
            for connection in connections:
                if not connection.closed.done():
                    connection.abort()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_main(
    plan: WorkerPlan, stop: Any, go: Any, start_at: Any, results: Any, log_level: int, parent_pid: int
) -> None:
    """Process entry point (spawned): run the worker on uvloop when available."""
    die_with_parent(parent_pid)  # SIGTERM when the parent dies: no orphans
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    setup_logging(f"load[{plan.worker}]", log_level, with_name=False)
    worker = Worker(plan)

    def report(progress: dict[str, Any]) -> None:
        results.put(("progress", plan.worker, progress))

    async def main() -> dict[str, Any]:
        results.put(("ready", plan.worker, None))
        while not go.wait(0):  # the parent's start signal, without blocking the loop
            await asyncio.sleep(0.01)
        return await worker.run(stop, report, start_at.value)

    try:
        final = _run(main())
    except Exception as exc:  # reported to the parent, which stops the run
        log.exception("load worker failed")
        results.put(("error", plan.worker, f"{type(exc).__name__}: {exc}"))
        return
    results.put(("done", plan.worker, final))


def _run(coro: Any) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:  # Windows, or not installed
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)
