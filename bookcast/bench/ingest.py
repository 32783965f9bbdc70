"""``bookcast bench ingest``: md_service's ingest throughput on one core, against real Kafka and Redis.

For each scenario (a number of pairs) it pre-produces N simulated exchange events (several
level changes each, lz4) into a fresh topic, then, repeated R times, drains the topic:

- ``consume``: the Kafka consumer alone, with md_service's settings (the floor);
- ``decode``: consume plus validating every event (``mdcore.events.parse_event``);
- ``md``: a real md_service (books, 100 ms windows, fenced Lua writes to Redis) until every
  event is applied and written.

It prints medians: level changes/s, CPU ms per 100k changes, events in per delta published
(the batching reduction), window close -> Redis ack latency, and md_service's throughput
relative to the baselines measured in the same run, then a JSON report. The process is
pinned to one CPU (``--cpu``) before any consumer exists, so librdkafka's threads share it.
The embedded broker keeps every event in memory: N events cost roughly N x 100 bytes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

from bookcast.bench.ingest_run import Pass, Produced, baseline, produce, run_md
from bookcast.embedded import EmbeddedInfra
from md_service.config import MdConfig

DEFAULTS = MdConfig("", "")  # md_service's own defaults
TARGET_CHANGES_PER_S = 150_000
TARGET_P99_MS = 10.0


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
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated markets (default 1)")
    parser.add_argument("--json", help="also write the JSON report to this file")
    parser.add_argument("--bootstrap", help="use this Kafka instead of an embedded one")
    parser.add_argument("--redis-url", help="use this Redis instead of an embedded one")
    args = parser.parse_args(argv)
    args.pair_counts = [int(x) for x in args.pairs.split(",") if x.strip()]
    if args.events < 1000 or args.repeats < 1 or not args.pair_counts or not 50 <= args.window_ms <= 100:
        parser.error("need --events >= 1000, --repeats >= 1, some --pairs and --window-ms in 50..100")
    return args


def pin(cpu: int | None) -> int | None:
    """Pin this thread (and every thread started after it) to one CPU; returns it."""
    if not hasattr(os, "sched_setaffinity") or cpu == -1:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return chosen


def median(passes: list[Pass], value: Callable[[Pass], float]) -> float:
    return statistics.median(value(p) for p in passes)


def summarise(produced: Produced, passes: dict[str, list[Pass]]) -> dict[str, Any]:
    md, decode, consume = passes["md"], passes["decode"], passes["consume"]

    def med(runs: list[Pass], value: Callable[[Pass], float], digits: int = 0) -> float:
        return round(median(runs, value), digits) if digits else round(median(runs, value))

    md_rate = median(md, lambda p: p.changes_per_s)
    p99 = median(md, lambda p: p.publish_p99_ms)
    return {
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
        "meets_target": md_rate >= TARGET_CHANGES_PER_S and p99 < TARGET_P99_MS,
        "passes": {kind: [round(p.changes_per_s) for p in runs] for kind, runs in passes.items()},
    }


def table(results: list[dict[str, Any]]) -> str:
    def ms(prefix: str) -> Callable[[dict[str, Any]], str]:
        return lambda r: f"{r[prefix + '_p50_ms']} / {r[prefix + '_p99_ms']} / {r[prefix + '_max_ms']} ms"

    rows = [
        ("pairs / partitions", lambda r: f"{r['pairs']} / {r['partitions']}"),
        ("events (level changes per event)", lambda r: f"{r['events']:,} ({r['changes_per_event']})"),
        ("baseline, consume only: changes/s", lambda r: f"{r['consume_changes_per_s']:,}"),
        ("baseline, consume + decode: changes/s", lambda r: f"{r['decode_changes_per_s']:,}"),
        ("md_service, all out: changes/s", lambda r: f"{r['md_changes_per_s']:,}"),
        ("  per CPU second (all threads)", lambda r: f"{r['md_changes_per_cpu_s']:,}"),
        ("  vs consume+decode, vs consume", lambda r: f"{r['md_vs_decode']:.2f}, {r['md_vs_consume']:.2f}"),
        ("CPU ms per 100k changes: consume/decode/md", lambda r: (
            f"{r['consume_cpu_ms_per_100k']} / {r['decode_cpu_ms_per_100k']} / {r['md_cpu_ms_per_100k']}")),
        ("  events in per delta out", lambda r: f"{r['md_events_per_delta']:,}"),
        ("  window close -> Redis ack p50/p99/max*", ms("md_publish")),
        ("  of it closing windows p50/p99", lambda r: f"{r['md_build_p50_ms']} / {r['md_build_p99_ms']} ms"),
        ("  window writes measured, late ticks", lambda r: f"{r['md_windows_measured']}, {r['md_late_ticks']}"),  # noqa: E501
        (f"target: >= {TARGET_CHANGES_PER_S:,}/s, p99 < {TARGET_P99_MS:g} ms",
         lambda r: "met" if r["meets_target"] else "NOT met"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    cols = [[fmt(r) for r in results] for _, fmt in rows]
    colw = [max(len(c[i]) for c in cols) for i in range(len(results))]
    lines = []
    for (name, _), cells in zip(rows, cols, strict=True):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, colw, strict=True)))
    return "\n".join(lines)


def scenario(args: argparse.Namespace, bootstrap: str, redis_url: str, pairs: int) -> dict[str, Any]:
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
    return summarise(produced, passes)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    infra = None
    if not (args.bootstrap and args.redis_url):
        infra = EmbeddedInfra().start()
    try:
        bootstrap = args.bootstrap or infra.kafka_bootstrap  # type: ignore[union-attr]
        redis_url = args.redis_url or infra.redis_url  # type: ignore[union-attr]
        cpu = pin(args.cpu)  # after the servers started: they keep every CPU
        print(f"bookcast bench ingest: {args.repeats} repeats, window {args.window_ms} ms, "
              f"pinned to CPU {cpu if cpu is not None else '(none)'}", flush=True)  # fmt: skip
        results = [scenario(args, bootstrap, redis_url, pairs) for pairs in args.pair_counts]
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
