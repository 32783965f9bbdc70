"""One load-generator process: many connections on one event loop, reporting to the parent.

Each connection is kept open for the whole run: opened (at most ``open_concurrency`` at a
time, paced by the ramp), reopened with jittered backoff if it fails or drops. Every
``interval`` seconds the process sends the parent its counters and the latencies of the
interval; at the end it closes every connection cleanly and sends its totals, with its
histograms encoded so the parent can merge them exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import random
import resource
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import InvalidHandshake
from websockets.uri import parse_uri

from clients.backoff import Backoff
from clients.load.checker import StreamChecker
from clients.load.connection import LoadConnection, open_connection
from clients.load.stats import Latencies, LoadCounters

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
        self.open: set[LoadConnection] = set()
        self.all_open_at: float | None = None
        self._opened_once = 0
        self._ending = False

    async def run(self, stop: Any, report: Any, start_at: float) -> dict[str, Any]:
        """Run until the duration ends or ``stop`` is set; returns the final report fields."""
        plan = self.plan
        loop = asyncio.get_running_loop()
        delay = start_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        started = time.monotonic()
        cpu0 = _cpu_seconds()
        gate = asyncio.Semaphore(plan.open_concurrency)
        tasks = [
            loop.create_task(self._keep_open(spec, gate, started + (i / plan.ramp if plan.ramp else 0.0)))
            for i, spec in enumerate(plan.specs)
        ]
        deadline = started + plan.duration
        next_report = started + plan.interval
        while True:
            now = time.monotonic()
            if now >= deadline or stop.is_set():
                break
            await asyncio.sleep(min(0.05, deadline - now))
            if time.monotonic() >= next_report:
                report(self._progress())
                next_report += plan.interval
        elapsed = time.monotonic() - started
        cpu = _cpu_seconds() - cpu0
        connected = len(self.open)
        self._ending = True
        await self._close_all(tasks)
        self.total.exchange.add(self.interval.exchange)
        self.total.window.add(self.interval.window)
        return {
            "counters": self.counters.as_dict(),
            "latencies": self.total.encode(),
            "elapsed": elapsed,
            "cpu_seconds": cpu,
            "connections": len(plan.specs),
            "connected_at_end": connected,
            "all_open_after": None if self.all_open_at is None else self.all_open_at - started,
        }

    def _progress(self) -> dict[str, Any]:
        encoded = self.interval.encode()
        self.total.exchange.add(self.interval.exchange)
        self.total.window.add(self.interval.window)
        self.interval.reset()
        return {"counters": self.counters.as_dict(), "latencies": encoded, "open": len(self.open)}

    async def _keep_open(self, spec: ConnSpec, gate: asyncio.Semaphore, not_before: float) -> None:
        """Hold one connection open for the whole run, reopening it when it fails or drops."""
        uri = parse_uri(spec.url)
        rand = random.Random(spec.index)
        attempt = 0
        delay = not_before - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        while not self._ending:
            checker = StreamChecker(spec.pairs, self.counters, self.interval, spec.verify)
            try:
                async with gate:
                    connection = await open_connection(uri, checker, self.plan.open_timeout, spec.source)
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                self.counters.connect_failures += 1
                if self.counters.connect_failures <= 5 or self.counters.connect_failures % 1000 == 0:
                    log.warning(
                        "connection %d to %s failed: %s", spec.index, spec.url, exc or type(exc).__name__
                    )
                await asyncio.sleep(RECONNECT.delay(attempt, rand.random))
                attempt += 1
                continue
            self.counters.connects += 1
            self.open.add(connection)
            self._opened_once += 1
            if self._opened_once == len(self.plan.specs) and self.all_open_at is None:
                self.all_open_at = time.monotonic()
            attempt = 0
            try:
                await connection.closed
            finally:
                self.open.discard(connection)
            if connection.closing or self._ending:
                return
            self.counters.disconnects += 1
            await asyncio.sleep(RECONNECT.delay(0, rand.random))

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


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGTERM to this process if its parent dies (no orphans)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def worker_main(plan: WorkerPlan, stop: Any, go: Any, start_at: Any, results: Any, log_level: int) -> None:
    """Process entry point (spawned): run the worker on uvloop when available."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    logging.basicConfig(level=log_level, format=f"%(asctime)s load[{plan.worker}] %(levelname)s: %(message)s")
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
