"""One measured pass of ``bookcast bench ingest``: pre-produce events, then drain them.

Kept apart from the command so each pass is a plain function: produce N simulated
exchange events into a topic (lz4, as the feed does), then either read them back with
nothing but decoding (the baseline) or run a real :class:`md_service.service.MdService` in
this process until it has applied and written every one of them. Times and CPU are taken
from the first message consumed to the last window Redis acknowledged, so joining the
consumer group is not counted.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from feed_simulator.market import MarketParams, build_markets
from feed_simulator.source import EventSource
from feed_simulator.topic import ensure_topic
from md_service.config import MdConfig
from md_service.heap import settle_heap
from md_service.kafka_source import KafkaSource
from md_service.redis_store import RedisStore
from md_service.service import MdService
from mdcore.events import parse_event
from mdcore.instruments import default_pairs
from mdcore.latency import LatencyHistogram
from mdcore.redis_layout import RedisLayout


@dataclass(frozen=True, slots=True)
class Produced:
    topic: str
    partitions: int
    pairs: int
    events: int
    changes: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass measured. Latencies in ms; ``cpu_s`` is process CPU (all threads)."""

    kind: str  # "consume", "decode" or "md"
    events: int
    changes: int
    wall_s: float
    cpu_s: float
    published: int = 0  # deltas md_service published
    windows: int = 0
    snapshots: int = 0
    publish_p50_ms: float = 0.0  # window close -> Redis ack, per published delta (after the warm-up)
    publish_p99_ms: float = 0.0
    publish_max_ms: float = 0.0
    build_p50_ms: float = 0.0  # the part of the publish latency spent closing windows (before Redis)
    build_p99_ms: float = 0.0
    windows_late: int = 0
    windows_measured: int = 0  # window writes in the latency figures (after the warm-up)
    finished_at: float = 0.0  # time.monotonic() when every event had been applied

    @property
    def changes_per_s(self) -> float:
        return self.changes / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_ms_per_100k(self) -> float:
        return self.cpu_s * 1000 * 100_000 / self.changes if self.changes else 0.0


def produce(bootstrap: str, pairs: int, partitions: int, events: int, seed: int) -> Produced:
    """Create a topic and fill it with ``events`` simulated events over the first ``pairs`` pairs."""
    topic = f"bench-ingest-{pairs}p-{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap, topic, partitions)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            # Record batches of a few hundred events, as a live feed makes them (a feed at
            # thousands of events/s lingering 5 ms): a consumer then gets each partition's
            # events in small slices, not in megabyte bursts only a catch-up ever sees.
            "linger.ms": 5,
            "batch.num.messages": 200,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 512 * 1024,
        }
    )
    producer.list_topics(topic, timeout=10)
    source = EventSource(build_markets(default_pairs(pairs), seed, MarketParams()))
    started = time.monotonic()
    changes = 0
    now = time.time_ns()
    for i in range(events):
        event = source.next_event(now + i * 1_000)
        changes += event.changes
        while True:
            try:
                producer.produce(topic, event.value, event.key)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    left = producer.flush(120)
    if left:
        raise RuntimeError(f"{left} events were not confirmed by the broker")
    return Produced(topic, partitions, pairs, events, changes, time.monotonic() - started)


def baseline(bootstrap: str, produced: Produced, decode: bool, max_batch: int) -> Pass:
    """Read every event back with md_service's consumer settings; ``decode`` also parses each."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    consumer.assign([TopicPartition(produced.topic, p, OFFSET_BEGINNING) for p in range(produced.partitions)])
    seen = changes = 0
    first_wall = first_cpu = 0.0
    deadline = time.monotonic() + 300
    try:
        while seen < produced.events:
            if time.monotonic() > deadline:
                raise RuntimeError(f"baseline read {seen} of {produced.events} events")
            batch = consumer.consume(max_batch, 0.1)
            if batch and not seen:
                first_wall, first_cpu = time.perf_counter(), time.process_time()
            for msg in batch:
                if msg.error() is not None:
                    continue
                seen += 1
                if decode:
                    changes += len(parse_event(msg.value())[3])
        wall, cpu = time.perf_counter() - first_wall, time.process_time() - first_cpu
    finally:
        consumer.close()
    return Pass("decode" if decode else "consume", seen, changes or produced.changes, wall, cpu)


def run_md(
    bootstrap: str,
    redis_url: str,
    produced: Produced,
    window_ms: int,
    max_batch: int,
    slots: int,
    warmup_s: float = 1.0,
    on_assigned: Callable[[], None] | None = None,
    timeout_s: float = 600.0,
    session_timeout_ms: int = 2_000,
) -> Pass:
    """Run md_service on the topic until every event is written: a drain of what is there, or
    (``on_assigned``, called once it owns every partition, starts a live feed) a live run.

    Publish latencies are those md_service reports (:class:`md_service.counters.WindowLatency`),
    of the windows written after the first ``warmup_s`` of consuming (the maximum covers the
    whole run).
    """
    cfg = MdConfig(
        kafka_bootstrap=bootstrap,
        redis_url=redis_url,
        topic=produced.topic,
        group_id=f"bench-md-{uuid.uuid4().hex[:8]}",
        window_ms=window_ms,
        window_slots=slots,
        redis_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        max_batch=max_batch,
        session_timeout_ms=session_timeout_ms,  # short: Tansu's group join takes about half of it
        status_interval_s=3600.0,
        instance="bench",
        topic_partitions=produced.partitions,
    )
    store = RedisStore(redis_url, RedisLayout(cfg.redis_prefix, cfg.topic_partitions), cfg.topic, cfg.history)
    service = MdService(cfg, store, lambda on_assign, on_revoke: KafkaSource(cfg, on_assign, on_revoke))
    counters = service.counters
    publish, build = counters.latency.histograms["close_to_publish"], counters.latency.build
    marks: dict[str, float] = {}
    warm: dict[str, LatencyHistogram] = {}  # the histograms as they were at the end of the warm-up
    handle = service.intake.handle_batch

    def timed_handle(batch: list, skipping: set[int] | None = None) -> None:
        if "wall" not in marks:
            marks["wall"], marks["cpu"] = time.perf_counter(), time.process_time()
        elif "warm" not in marks and time.perf_counter() - marks["wall"] >= warmup_s:
            # Sustained latency: the first windows of a stream carry whole books (its start).
            marks["warm"], marks["warm_windows"] = 1.0, counters.windows
            warm["publish"], warm["build"] = publish.copy(), build.copy()
        handle(batch, skipping)

    service.intake.handle_batch = timed_handle  # type: ignore[method-assign]
    done = threading.Event()

    def watch() -> None:  # stop once every event has been applied; run() then writes the last window
        waiting = on_assigned
        give_up = time.monotonic() + timeout_s
        while not done.wait(0.005):
            if time.monotonic() > give_up:
                service.stop()
                return
            if waiting is not None and len(service.ownership.partitions) >= produced.partitions:
                waiting()
                waiting = None
            if (
                counters.events_applied + counters.events_duplicate + counters.events_invalid
                >= produced.events
            ):
                marks["finished"] = time.monotonic()
                service.stop()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    settle_heap()  # as the md_service command does before its loop
    try:
        service.run()  # returns after the final window was written
        if "finished" not in marks:
            applied = counters.events_applied + counters.events_duplicate + counters.events_invalid
            raise RuntimeError(
                f"md_service applied {applied} of {produced.events} events in {timeout_s:.0f} s"
            )
        wall, cpu = time.perf_counter() - marks["wall"], time.process_time() - marks["cpu"]
    finally:
        done.set()
        watcher.join()
    measured = publish.minus(warm["publish"]) if warm else publish
    built = build.minus(warm["build"]) if warm else build
    return Pass(
        "md",
        counters.events_applied,
        counters.level_changes,
        wall,
        cpu,
        published=counters.deltas,
        windows=counters.windows,
        snapshots=counters.snapshots,
        publish_p50_ms=measured.percentile(50) / 1000,
        publish_p99_ms=measured.percentile(99) / 1000,
        publish_max_ms=publish.highest() / 1000,
        windows_measured=counters.windows - int(marks.get("warm_windows", 0)),
        build_p50_ms=built.percentile(50) / 1000,
        build_p99_ms=built.percentile(99) / 1000,
        windows_late=counters.windows_late,
        finished_at=marks.get("finished", 0.0),
    )
