"""``bookcast bench ingest``: md_service's ingest throughput on one core, against real Kafka and Redis.

For each scenario (a number of pairs) it pre-produces N simulated exchange events (several
level changes each, lz4) into a fresh topic, then, repeated R times, drains the topic:

- ``consume``: the Kafka consumer alone, with md_service's settings (the floor);
- ``decode``: consume plus validating every event (``mdcore.events.parse_event``);
- ``md``: a real md_service (books, 100 ms windows, fenced Lua writes to Redis) until every
  event is applied and written;
- ``paced``: a live feed at ``--rate`` level changes/s (the goal's 150k by default) from a
  producer process on the other CPUs, and md_service consuming it as it arrives
  (:mod:`bookcast.bench.ingest_paced`): the latency at the goal's rate, not at the ceiling.

It prints medians: level changes/s, CPU ms per 100k changes, events in per delta published
(the batching reduction), window close -> Redis ack latency, and md_service's throughput
relative to the baselines measured in the same run, then a JSON report. The process is
pinned to one CPU (``--cpu``) before any consumer exists, so librdkafka's threads share it.
The embedded broker keeps every event in memory: N events cost roughly N x 100 bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

from bookcast.bench.ingest_paced import Feed, PacedFeed
from bookcast.bench.ingest_run import Pass, Produced, baseline, produce, run_md
from bookcast.embedded import EmbeddedInfra
from md_service.config import MdConfig
from mdruntime.logs import setup_logging

DEFAULTS = MdConfig("", "")  # md_service's own defaults
TARGET_CHANGES_PER_S = 150_000
TARGET_P99_MS = 10.0
KEPT_UP_MS = 1_000.0  # a paced pass kept up: md_service applied everything this soon after the feed ended
PACED_SESSION_MS = 6_000  # md_service's default: a broker pause of a second or two must not cost a rebalance


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bookcast bench ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000, help="events per scenario (default 300000)")
    parser.add_argument(
        "--pairs", default="8,128", help="scenarios: comma list of pair counts (default 8,128)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="passes of each kind per scenario (default 3)")
    parser.add_argument("--window-ms", type=int, default=100, help="md_service window, 50..100 (default 100)")
    parser.add_argument(
        "--slots",
        type=int,
        default=DEFAULTS.window_slots,
        help=f"window slots (default {DEFAULTS.window_slots})",
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds left out of latencies (default 1)")
    parser.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULTS.max_batch,
        help=f"per consume() (default {DEFAULTS.max_batch})",
    )
    parser.add_argument("--partitions", type=int, help="topic partitions (default: min(pairs, 16))")
    parser.add_argument(
        "--cpu", type=int, help="CPU to pin to (default: the last one allowed; -1: no pinning)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=TARGET_CHANGES_PER_S,
        help=f"level changes/s of the paced (live) pass (default {TARGET_CHANGES_PER_S}; 0: no paced pass)",
    )
    parser.add_argument(
        "--paced-seconds", type=float, default=10.0, help="length of a paced pass (default 10)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated markets (default 1)")
    parser.add_argument("--json", help="also write the JSON report to this file")
    parser.add_argument("--bootstrap", help="use this Kafka instead of an embedded one")
    parser.add_argument("--redis-url", help="use this Redis instead of an embedded one")
    args = parser.parse_args(argv)
    args.pair_counts = [int(x) for x in args.pairs.split(",") if x.strip()]
    if args.events < 1000 or args.repeats < 1 or not args.pair_counts or not 50 <= args.window_ms <= 100:
        parser.error("need --events >= 1000, --repeats >= 1, some --pairs and --window-ms in 50..100")
    if args.rate < 0 or (args.rate and args.paced_seconds < 2 * args.warmup):
        parser.error("need --rate >= 0 and --paced-seconds at least twice --warmup")
    return args


def pin(cpu: int | None) -> int | None:
    """Pin this thread (and every thread started after it) to one CPU; returns it."""
    if not hasattr(os, "sched_setaffinity") or cpu == -1:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return chosen


def pin_process(pid: int, cpus: set[int]) -> None:
    """Keep a process we started (every thread of it) on ``cpus``, off md_service's core."""
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task), cpus)


def catch_up_ms(md: Pass, feed: Feed) -> float:
    """How long after the live feed's last event md_service had applied everything."""
    return (md.finished_at - feed.ended_at) * 1000


def median(passes: list[Pass], value: Callable[[Pass], float]) -> float:
    return statistics.median(value(p) for p in passes)


def summarise(
    produced: Produced, passes: dict[str, list[Pass]], paced: list[tuple[Pass, Feed]]
) -> dict[str, Any]:
    md, decode, consume = passes["md"], passes["decode"], passes["consume"]

    def med(runs: list[Pass], value: Callable[[Pass], float], digits: int = 0) -> float:
        return round(median(runs, value), digits) if digits else round(median(runs, value))

    md_rate = median(md, lambda p: p.changes_per_s)
    p99 = median(md, lambda p: p.publish_p99_ms)
    summary: dict[str, Any] = {
        "pairs": produced.pairs,
        "partitions": produced.partitions,
        "events": produced.events,
        "level_changes": produced.changes,
        "changes_per_event": round(produced.changes / produced.events, 2),
        "consume_changes_per_s": med(consume, lambda p: p.changes_per_s),
        "decode_changes_per_s": med(decode, lambda p: p.changes_per_s),
        "md_changes_per_s": round(md_rate),
        "md_changes_per_cpu_s": med(md, lambda p: p.changes / p.cpu_s),
        "md_vs_decode": round(md_rate / median(decode, lambda p: p.changes_per_s), 3),
        "md_vs_consume": round(md_rate / median(consume, lambda p: p.changes_per_s), 3),
        "consume_cpu_ms_per_100k": med(consume, lambda p: p.cpu_ms_per_100k, 1),
        "decode_cpu_ms_per_100k": med(decode, lambda p: p.cpu_ms_per_100k, 1),
        "md_cpu_ms_per_100k": med(md, lambda p: p.cpu_ms_per_100k, 1),
        "md_events_per_delta": med(md, lambda p: p.events / max(1, p.published), 1),
        "md_publish_p50_ms": med(md, lambda p: p.publish_p50_ms, 2),
        "md_publish_p99_ms": round(p99, 2),
        "md_publish_max_ms": round(max(p.publish_max_ms for p in md), 2),
        "md_build_p50_ms": med(md, lambda p: p.build_p50_ms, 2),
        "md_build_p99_ms": med(md, lambda p: p.build_p99_ms, 2),
        "md_windows_measured": med(md, lambda p: p.windows_measured),
        "md_late_ticks": med(md, lambda p: p.windows_late),
        "passes": {kind: [round(p.changes_per_s) for p in runs] for kind, runs in passes.items()},
    }
    summary["meets_target"] = md_rate >= TARGET_CHANGES_PER_S and p99 < TARGET_P99_MS
    if paced:
        runs = [md for md, _ in paced]
        rate = statistics.median(feed.changes_per_s for _, feed in paced)
        paced_p99 = median(runs, lambda p: p.publish_p99_ms)
        catch_up = statistics.median(catch_up_ms(md, feed) for md, feed in paced)
        summary.update({
            "paced_changes_per_s": round(rate),
            "paced_events": paced[0][1].events,
            "paced_core_busy": med(runs, lambda p: p.cpu_s / p.wall_s, 2),
            "paced_catch_up_ms": round(catch_up, 1),
            # how many times the live rate a backlog drains at (the drain passes are catch-up)
            "catch_up_vs_live": round(md_rate / rate, 2) if rate else None,
            "paced_publish_p50_ms": med(runs, lambda p: p.publish_p50_ms, 2),
            "paced_publish_p99_ms": round(paced_p99, 2),
            "paced_publish_max_ms": round(max(p.publish_max_ms for p in runs), 2),
            "paced_build_p99_ms": med(runs, lambda p: p.build_p99_ms, 2),
            "paced_windows_measured": med(runs, lambda p: p.windows_measured),
            "paced_late_ticks": med(runs, lambda p: p.windows_late),
            "paced_rates": [round(feed.changes_per_s) for _, feed in paced],
            "paced_feed_behind_max_ms": round(max(feed.behind_max_ms for _, feed in paced), 1),
        })  # fmt: skip
        if rate >= TARGET_CHANGES_PER_S * 0.98:  # the goal's latency is the one at the goal's rate
            summary["meets_target"] = (
                md_rate >= TARGET_CHANGES_PER_S and paced_p99 < TARGET_P99_MS and catch_up < KEPT_UP_MS
            )
    return summary


def table(results: list[dict[str, Any]]) -> str:
    def ms(prefix: str) -> Callable[[dict[str, Any]], str]:
        return lambda r: f"{r[prefix + '_p50_ms']} / {r[prefix + '_p99_ms']} / {r[prefix + '_max_ms']} ms"

    rows = [
        ("pairs / partitions", lambda r: f"{r['pairs']} / {r['partitions']}"),
        ("events (level changes per event)", lambda r: f"{r['events']:,} ({r['changes_per_event']})"),
        ("baseline, consume only: changes/s", lambda r: f"{r['consume_changes_per_s']:,}"),
        ("baseline, consume + decode: changes/s", lambda r: f"{r['decode_changes_per_s']:,}"),
        ("md_service, draining all out: changes/s", lambda r: f"{r['md_changes_per_s']:,}"),
        ("  per CPU second (all threads)", lambda r: f"{r['md_changes_per_cpu_s']:,}"),
        ("  vs consume+decode, vs consume", lambda r: f"{r['md_vs_decode']:.2f}, {r['md_vs_consume']:.2f}"),
        ("CPU ms per 100k changes: consume/decode/md", lambda r: (
            f"{r['consume_cpu_ms_per_100k']} / {r['decode_cpu_ms_per_100k']} / {r['md_cpu_ms_per_100k']}")),
        ("  events in per delta out", lambda r: f"{r['md_events_per_delta']:,}"),
        ("  window close -> Redis ack p50/p99/max*", ms("md_publish")),
        ("  of it closing windows p50/p99", lambda r: f"{r['md_build_p50_ms']} / {r['md_build_p99_ms']} ms"),
        ("  window writes measured, late ticks", lambda r: f"{r['md_windows_measured']}, {r['md_late_ticks']}"),  # noqa: E501
    ]  # fmt: skip
    if all("paced_changes_per_s" in r for r in results):
        rows += [
            ("md_service, live feed paced at: changes/s", lambda r: f"{r['paced_changes_per_s']:,}"),
            ("  its core busy; caught up after feed end", lambda r: (
                f"{r['paced_core_busy']:.0%}; {r['paced_catch_up_ms']:,} ms")),
            ("  a backlog drains at (draining / live)", lambda r: f"{r['catch_up_vs_live']}x the live rate"),
            ("  window close -> Redis ack p50/p99/max*", ms("paced_publish")),
            ("  window writes measured, late ticks", lambda r: (
                f"{r['paced_windows_measured']}, {r['paced_late_ticks']}")),
        ]  # fmt: skip
    rows.append((f"target: >= {TARGET_CHANGES_PER_S:,}/s, p99 < {TARGET_P99_MS:g} ms at that rate",
                 lambda r: "met" if r["meets_target"] else "NOT met"))  # fmt: skip
    width = max(len(name) for name, _ in rows)
    cols = [[fmt(r) for r in results] for _, fmt in rows]
    colw = [max(len(c[i]) for c in cols) for i in range(len(results))]
    lines = []
    for (name, _), cells in zip(rows, cols, strict=True):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, colw, strict=True)))
    return "\n".join(lines)


def paced_pass(
    args: argparse.Namespace, bootstrap: str, redis_url: str, pairs: int, partitions: int, cpus: set[int]
) -> tuple[Pass, Feed]:
    """md_service consuming a live feed at ``args.rate`` (the producer runs on ``cpus``)."""
    feed = PacedFeed(bootstrap, pairs, partitions, args.seed, args.rate, args.paced_seconds)
    try:
        feed.start(cpus)
        planned = Produced(feed.topic, partitions, pairs, feed.events, feed.changes, 0.0)
        md = run_md(bootstrap, redis_url, planned, args.window_ms, args.max_batch, args.slots, args.warmup,
                    on_assigned=feed.go, timeout_s=args.paced_seconds + 120,
                    session_timeout_ms=PACED_SESSION_MS)  # fmt: skip
        return md, feed.result(timeout=60)
    finally:
        feed.close()


def scenario(
    args: argparse.Namespace, bootstrap: str, redis_url: str, pairs: int, cpus: set[int]
) -> dict[str, Any]:
    partitions = args.partitions or min(pairs, 16)
    print(f"\n[{pairs} pairs] producing {args.events:,} events into {partitions} partitions…", flush=True)
    produced = produce(bootstrap, pairs, partitions, args.events, args.seed)
    print(f"  produced {produced.changes:,} level changes in {produced.seconds:.1f} s", flush=True)
    passes: dict[str, list[Pass]] = {"consume": [], "decode": [], "md": []}
    md = (bootstrap, redis_url, produced, args.window_ms, args.max_batch, args.slots, args.warmup)
    for r in range(args.repeats):
        passes["consume"].append(baseline(bootstrap, produced, decode=False, max_batch=args.max_batch))
        passes["decode"].append(baseline(bootstrap, produced, decode=True, max_batch=args.max_batch))
        passes["md"].append(run_md(*md))
        line = ", ".join(f"{kind} {runs[-1].changes_per_s:,.0f}/s" for kind, runs in passes.items())
        p99 = passes["md"][-1].publish_p99_ms
        print(f"  pass {r + 1}/{args.repeats}: {line}; md publish p99 {p99:.2f} ms", flush=True)
    paced: list[tuple[Pass, Feed]] = []
    for r in range(args.repeats if args.rate else 0):
        md_pass, sent = paced_pass(args, bootstrap, redis_url, pairs, partitions, cpus)
        paced.append((md_pass, sent))
        print(f"  paced {r + 1}/{args.repeats}: {sent.changes_per_s:,.0f} changes/s for "
              f"{sent.seconds:.1f} s, md caught up {catch_up_ms(md_pass, sent):,.0f} ms "
              f"after the feed ended; publish p99 {md_pass.publish_p99_ms:.2f} ms", flush=True)  # fmt: skip
    return summarise(produced, passes, paced)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    setup_logging(level=logging.WARNING)
    infra = None
    if not (args.bootstrap and args.redis_url):
        infra = EmbeddedInfra().start()
    try:
        bootstrap = args.bootstrap or infra.kafka_bootstrap  # type: ignore[union-attr]
        redis_url = args.redis_url or infra.redis_url  # type: ignore[union-attr]
        allowed = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
        cpu = pin(args.cpu)  # after the servers started: they keep every CPU
        others = allowed - {cpu} if cpu is not None else set()  # for the broker, Redis, a paced feed
        if infra is not None and others:  # the broker off md_service's core, as in production
            pin_process(infra.kafka.pid, others)
        print(f"bookcast bench ingest: {args.repeats} repeats, window {args.window_ms} ms, "
              f"pinned to CPU {cpu if cpu is not None else '(none)'}"
              f"{f'; embedded servers and the paced feed on CPUs {sorted(others)}' if others else ''}",
              flush=True)  # fmt: skip
        results = [scenario(args, bootstrap, redis_url, pairs, others) for pairs in args.pair_counts]
        if infra is not None:
            rss = infra.kafka.rss_bytes()
            print(f"\nembedded broker memory: {rss / 2**20:,.0f} MiB" if rss else "", flush=True)
    finally:
        if infra is not None:
            infra.stop()
    print("\nmedians over repeats (md_service on one core; baselines from the same run):")
    print(table(results))
    print(
        f"* latencies after the first {args.warmup:g} s of each md pass (a stream's first deltas are whole "
        "books); max: whole pass"
    )
    report = {"benchmark": "ingest", "window_ms": args.window_ms, "window_slots": args.slots,
              "repeats": args.repeats, "cpu": cpu, "scenarios": results}  # fmt: skip
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    return 0 if all(r["meets_target"] for r in results) else 1
