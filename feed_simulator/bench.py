"""The feed's benchmark: level changes/s into Kafka, against baselines measured in the same run.

Four measurements, each repeated and reported as the median:

- ``generate``: the markets alone, no Kafka (the generator's CPU ceiling on one core);
- ``produce``: pre-generated events pushed through the same tuned producer (the ceiling of
  producer + broker, the baseline the feed is compared with);
- ``feed-1``: the real feed, one process, as fast as it can go (``--rate`` far above reach);
- ``feed-N``: the same with ``--processes N``.

Every rate is counted from broker confirmations. ``python -m feed_simulator.bench
--bootstrap HOST:PORT`` runs it against a broker you have; ``bookcast bench feed`` starts an
embedded one per repeat so its memory stays small (it keeps every message).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

from feed_simulator.config import FeedConfig
from feed_simulator.delivery import DeliveryCounter, produce, producer_settings
from feed_simulator.market import MarketParams, build_markets
from feed_simulator.producer import cpu_seconds, run_feed
from feed_simulator.source import EventSource
from feed_simulator.topic import ensure_topic
from mdcore.instruments import default_pairs
from mdruntime.logs import setup_logging

TARGET = 200_000  # level changes/s the issue asks of one process
FLAT_OUT = 1e9  # a requested rate no process reaches: "as fast as possible"

BrokerFactory = Callable[[], AbstractContextManager[str]]


def build_parser(prog: str = "python -m feed_simulator.bench") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Benchmark the feed into Kafka.")
    parser.add_argument("--bootstrap", help="an existing broker (default: an embedded one per repeat)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measurement (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats; medians are reported (default 3)")
    parser.add_argument("--pairs", type=int, default=8, help="pairs (default 8)")
    parser.add_argument("--processes", type=int, default=2, help="processes of the feed-N run (default 2)")
    parser.add_argument("--max-actions", type=int, default=6, help="actions per exchange event (default 6)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    return parser


def measure_generate(pairs: list[str], seconds: float, params: MarketParams) -> tuple[float, float, float]:
    """Events/s, changes/s and changes per CPU-second of the markets and encoding alone, no Kafka."""
    source = EventSource(build_markets(pairs, 1, params))
    for market in source.markets:
        while market.seeding:
            market.next_changes()
    events = changes = 0
    start, cpu = time.perf_counter(), time.process_time()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(1000):
            changes += source.next_event(time.time_ns()).changes
        events += 1000
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return events / elapsed, changes / elapsed, changes / cpu


def measure_produce(
    bootstrap: str, pairs: list[str], seconds: float, params: MarketParams
) -> tuple[float, float, float]:
    """Delivered events/s, changes/s and changes per CPU-second of pre-generated events."""
    source = EventSource(build_markets(pairs, 2, params))
    topic = _topic(bootstrap)
    events = [source.next_event(time.time_ns()) for _ in range(200_000)]
    producer = Producer(producer_settings(bootstrap))
    producer.list_topics(topic, timeout=10)
    counter = DeliveryCounter()
    start, cpu = time.monotonic(), cpu_seconds()
    deadline = start + seconds
    sent = 0
    while time.monotonic() < deadline:
        for event in events[sent % len(events) : sent % len(events) + 1000]:
            produce(producer, topic, event.value, event.key, counter.callback(event.changes))
        sent += 1000
        producer.poll(0)
    producer.flush(30)
    elapsed, cpu = time.monotonic() - start, cpu_seconds() - cpu
    return (
        counter.delivered_events / elapsed,
        counter.delivered_changes / elapsed,
        counter.delivered_changes / cpu,
    )


def measure_feed(
    bootstrap: str, pairs: list[str], seconds: float, processes: int, max_actions: int
) -> tuple[float, float, float]:
    """The real feed flat out: delivered events/s, changes/s and changes per CPU-second (its report)."""
    cfg = FeedConfig(
        bootstrap, topic=_topic(bootstrap), pairs=tuple(pairs), rate=FLAT_OUT, duration=seconds,
        seed=3, processes=processes, max_actions=max_actions, progress_interval=max(seconds, 1.0),
    )  # fmt: skip
    report = run_feed(cfg)
    return report.events_per_s, report.changes_per_s, report.changes_per_cpu_s


def _topic(bootstrap: str) -> str:
    name = f"bench-feed-{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap, name, 8)
    return name


@contextlib.contextmanager
def existing(bootstrap: str) -> Iterator[str]:
    yield bootstrap


def run(args: argparse.Namespace, broker: BrokerFactory) -> dict[str, Any]:
    """All measurements, ``args.repeats`` times each; the medians and ratios."""
    pairs = default_pairs(args.pairs)
    params = MarketParams(max_actions=args.max_actions)
    runs: dict[str, list[tuple[float, float, float]]] = {
        "generate": [],
        "produce": [],
        "feed-1": [],
        "feed-N": [],
    }
    for repeat in range(args.repeats):
        runs["generate"].append(measure_generate(pairs, args.seconds, params))
        with broker() as bootstrap:
            runs["produce"].append(measure_produce(bootstrap, pairs, args.seconds, params))
        with broker() as bootstrap:
            runs["feed-1"].append(measure_feed(bootstrap, pairs, args.seconds, 1, args.max_actions))
        with broker() as bootstrap:
            runs["feed-N"].append(
                measure_feed(bootstrap, pairs, args.seconds, args.processes, args.max_actions)
            )
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    medians = {
        name: {
            "events_per_s": statistics.median(e for e, _, _ in values),
            "changes_per_s": statistics.median(c for _, c, _ in values),
            "changes_per_cpu_s": statistics.median(u for _, _, u in values),
            "changes_per_s_runs": [round(c) for _, c, _ in values],
        }
        for name, values in runs.items()
    }
    one, many = medians["feed-1"]["changes_per_s"], medians["feed-N"]["changes_per_s"]
    return {
        "benchmark": "feed",
        "pairs": args.pairs,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "processes": args.processes,
        "max_actions": args.max_actions,
        "results": medians,
        "ratios": {
            "feed_1_vs_produce_baseline": one / medians["produce"]["changes_per_s"],
            "feed_1_vs_generate": one / medians["generate"]["changes_per_s"],
            "feed_N_vs_feed_1": many / one,
            "feed_1_vs_target_200k": one / TARGET,
        },
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"feed benchmark: {result['pairs']} pairs, {result['seconds']:g} s x {result['repeats']} repeats, "
        f"medians; up to {result['max_actions']} actions per event"
    )
    print("  (changes/CPU-s counts every thread of the process, librdkafka's compression too:")
    print("   what one process does per second of CPU, whatever else runs on the machine)")
    print(f"  {'measurement':<34} {'events/s':>12} {'level changes/s':>16} {'changes/CPU-s':>14}")
    labels = {
        "generate": "generate only (no Kafka)",
        "produce": "baseline: produce pre-generated",
        "feed-1": "feed, 1 process",
        "feed-N": f"feed, {result['processes']} processes",
    }
    for name, label in labels.items():
        figures = result["results"][name]
        print(
            f"  {label:<34} {figures['events_per_s']:>12,.0f} {figures['changes_per_s']:>16,.0f} "
            f"{figures['changes_per_cpu_s']:>14,.0f}"
        )
    ratios = result["ratios"]
    print(
        f"  feed-1 / baseline {ratios['feed_1_vs_produce_baseline']:.2f}   "
        f"feed-1 / generate {ratios['feed_1_vs_generate']:.2f}   "
        f"feed-{result['processes']} / feed-1 {ratios['feed_N_vs_feed_1']:.2f}   "
        f"feed-1 / 200k target {ratios['feed_1_vs_target_200k']:.2f}"
    )


def main(argv: list[str] | None = None, broker: BrokerFactory | None = None, prog: str | None = None) -> int:
    args = build_parser(prog or "python -m feed_simulator.bench").parse_args(argv)
    if args.repeats < 1 or args.seconds <= 0 or args.pairs < 1 or args.processes < 1:
        print("bench: --repeats, --seconds, --pairs and --processes must be positive", file=sys.stderr)
        return 2
    setup_logging(level=logging.WARNING)
    if args.bootstrap:
        factory: BrokerFactory = lambda: existing(args.bootstrap)  # noqa: E731  (a one-line factory)
    elif broker is not None:
        factory = broker
    else:
        print("bench: --bootstrap is required here; `bookcast bench feed` embeds a broker", file=sys.stderr)
        return 2
    result = run(args, factory)
    print_table(result)
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
