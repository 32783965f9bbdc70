"""``--processes N``: the feed spread over N generator processes, one report for all.

Pairs are split so the parts carry about equal shares of the traffic (the hot pair of the
``hot-pair`` scenario gets a process to itself); each pair lives in exactly one process,
so its events keep their xseq order on its partition. Every process runs the ordinary
loop (:func:`feed_simulator.producer.pump`) with its own producer, at its share of the rate,
from one common start instant and on the same seed — so the schedule's bursts line up and
each pair's events are the very events a one-process run would generate for it.

The parent only coordinates: it waits until every child has a warmed-up producer, gives
the start signal, prints one progress line for all of them from shared counters, turns
Ctrl-C/SIGTERM into a clean stop of every child and merges their reports.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import queue
import secrets
import signal
import threading
import time
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from typing import Any

from feed_simulator.config import FeedConfig
from feed_simulator.market import MarketParams
from feed_simulator.producer import Plan, make_producer, pump
from feed_simulator.report import FeedReport, Progress, merge_reports
from feed_simulator.scenario import SCENARIOS, split_pairs
from feed_simulator.topic import ensure_topic
from mdruntime.children import die_with_parent, wait_children_ready
from mdruntime.logs import setup_logging

log = logging.getLogger("feed_simulator.producer")

READY_TIMEOUT = 60.0  # seconds for every child to start and connect its producer
START_MARGIN = 0.05  # seconds between the start signal and the common start instant


def plans_for(cfg: FeedConfig) -> list[Plan]:
    """One plan per process: its pairs, their shares within it, and its part of the rate."""
    scenario = SCENARIOS[cfg.scenario]
    weights = scenario.weights(cfg.pairs)
    plans = []
    for part, indices in enumerate(split_pairs(cfg.pairs, weights, cfg.processes)):
        share = sum(weights[i] for i in indices)
        plans.append(
            Plan(
                tuple(cfg.pairs[i] for i in indices),
                tuple(weights[i] / share for i in indices),
                cfg.rate * share,
                part,
            )
        )
    return plans


def split_count(total: int | None, plans: list[Plan], rate: float) -> list[int | None]:
    """``max_events`` per process, in proportion to each part's rate (they add up to ``total``)."""
    if total is None:
        return [None] * len(plans)
    counts = [int(total * plan.rate / rate) for plan in plans]
    counts[0] += total - sum(counts)
    return counts  # type: ignore[return-value]


def run_parallel(
    cfg: FeedConfig,
    *,
    stop: threading.Event | None = None,
    max_events: int | None = None,
    flush_timeout: float = 10.0,
    params: MarketParams | None = None,
) -> FeedReport:
    """Run ``cfg.processes`` generator processes until they are done; their merged report."""
    stop = stop or threading.Event()
    ensure_topic(cfg.kafka_bootstrap, cfg.topic, cfg.partitions)
    cfg = dataclasses.replace(cfg, seed=cfg.seed if cfg.seed is not None else secrets.randbits(32))
    plans = plans_for(cfg)
    ctx = multiprocessing.get_context("spawn")  # never fork a process that runs librdkafka threads
    child_stop = ctx.Event()
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    counters = ctx.Array("q", 3 * len(plans))
    results: Any = ctx.Queue()
    level = logging.getLogger().getEffectiveLevel()  # the children log like the parent
    children = [
        ctx.Process(
            target=_child,
            args=(
                cfg,
                plan,
                count,
                flush_timeout,
                params,
                child_stop,
                go,
                start_at,
                counters,
                results,
                level,
                os.getpid(),
            ),
            name=f"bookcast-feed-{plan.part}",
            daemon=True,
        )
        for plan, count in zip(plans, split_count(max_events, plans, cfg.rate), strict=True)
    ]
    log.info(
        "feed: %d processes, pairs per process %s, requested %s events/s in all",
        len(plans),
        [len(p.pairs) for p in plans],
        f"{cfg.rate:,.0f}",
    )
    for child in children:
        child.start()
    reports: dict[int, FeedReport] = {}
    try:
        wait_children_ready(results, children, READY_TIMEOUT, "feed process", "feed processes")
        start_at.value = time.monotonic() + START_MARGIN
        go.set()
        progress = Progress(lambda: _totals(counters), cfg.progress_interval, start_at.value)
        while len(reports) < len(plans):
            if stop.is_set():
                child_stop.set()
            try:
                kind, part, payload = results.get(timeout=0.1)
            except queue.Empty:
                if any(not c.is_alive() and c.exitcode not in (0, None) for c in children):
                    raise RuntimeError("a feed process died; see its output above") from None
            else:
                if kind == "done":
                    reports[part] = FeedReport(**payload)
                elif kind == "error":
                    raise RuntimeError(f"feed process {part} failed: {payload}")
            now = time.monotonic()
            if progress.due(now):
                progress.report(now)
    finally:
        child_stop.set()
        go.set()
        for child in children:
            child.join(timeout=flush_timeout + 5)
            if child.is_alive():
                child.kill()
                child.join()
    ordered = [reports[i] for i in range(len(plans))]
    merged = merge_reports(ordered, max(r.elapsed for r in ordered), cfg.rate)
    merged = dataclasses.replace(merged, scenario=cfg.scenario)
    for part, report in enumerate(ordered):
        log.info(
            "  process %d (%d pairs): %s events/s, %s level changes/s", part, report.pairs,
            f"{report.events_per_s:,.0f}", f"{report.changes_per_s:,.0f}",
        )  # fmt: skip
    log.info("%s", merged.summary())
    return merged


def _totals(counters: SynchronizedArray) -> tuple[int, int, int]:
    values = counters[:]
    return sum(values[0::3]), sum(values[1::3]), sum(values[2::3])


def _child(
    cfg: FeedConfig,
    plan: Plan,
    max_events: int | None,
    flush_timeout: float,
    params: MarketParams | None,
    stop: Any,
    go: Any,
    start_at: Synchronized,
    counters: SynchronizedArray,
    results: Any,
    log_level: int,
    parent_pid: int,
) -> None:
    """One generator process: connect, report ready, wait for the start, pump, report."""
    die_with_parent(parent_pid)  # SIGTERM when the parent dies: no orphans
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    setup_logging(f"feed[{plan.part}]", log_level)
    base = 3 * plan.part

    def publish(events: int, changes: int, failed: int) -> None:
        counters[base : base + 3] = [events, changes, failed]

    try:
        producer = make_producer(cfg)
        results.put(("ready", plan.part, None))
        go.wait()
        report = pump(
            cfg, producer, stop=stop, max_events=max_events, flush_timeout=flush_timeout,
            params=params, plan=plan, start_at=start_at.value, publish=publish,
        )  # fmt: skip
    except Exception as exc:  # reported to the parent, which stops the run
        results.put(("error", plan.part, f"{type(exc).__name__}: {exc}"))
        return
    results.put(("done", plan.part, _fields(report)))


def _fields(report: FeedReport) -> dict[str, Any]:
    return {f.name: getattr(report, f.name) for f in dataclasses.fields(report)}
