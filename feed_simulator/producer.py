"""The run loop: paced generation of exchange events into Kafka, and an honest rate report.

Events are generated in batches against the scenario's schedule (anchored at the start,
see :mod:`feed_simulator.pacing`), produced with a batching, compressing, idempotent
producer (:mod:`feed_simulator.delivery`), and counted when the broker *confirms* them.
Fault injection and recording, when asked for, hook into the same loop; without them the
loop is the lean path that reaches the feed's top rate.

Known limitation: every run starts each pair's book afresh with xseq 1, also on a topic
that already holds an earlier run's events (see :mod:`feed_simulator.source`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import resource
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import Producer

from feed_simulator.config import FeedConfig
from feed_simulator.delivery import DeliveryCounter, ProducerLike, produce, producer_settings
from feed_simulator.faults import FaultInjector
from feed_simulator.market import MarketParams, build_markets
from feed_simulator.recording import Recorder
from feed_simulator.report import FeedReport, Progress
from feed_simulator.scenario import SCENARIOS
from feed_simulator.source import EncodedEvent, EventSource
from feed_simulator.topic import ensure_topic
from mdcore.partitioning import KeyPartitions

log = logging.getLogger(__name__)

MAX_BATCH = 1_000  # events generated between two services of the producer (callbacks, stop)
MIN_WAIT = 0.001  # never sleep shorter than this: a batch per tick, not a sleep per event
MAX_WAIT = 0.1  # never sleep longer than this, so progress and the duration stay on time


class StopFlag(Protocol):
    """``threading.Event`` or ``multiprocessing.Event``: set from elsewhere to stop the loop."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True, slots=True)
class Plan:
    """What one process generates: some pairs, their shares and their part of the rate."""

    pairs: tuple[str, ...]
    weights: tuple[float, ...]
    rate: float
    part: int = 0


def whole_plan(cfg: FeedConfig) -> Plan:
    """Every pair of ``cfg`` in one process."""
    weights = SCENARIOS[cfg.scenario].weights(cfg.pairs)
    return Plan(tuple(cfg.pairs), tuple(weights), cfg.rate)


def make_producer(cfg: FeedConfig) -> Producer:
    """A tuned producer, warmed up: with the topic's metadata in hand the idempotent producer
    delivers its first batch at once instead of ~1 s later (measured on Tansu). The topic
    must exist already, so naming it cannot auto-create it with the wrong partition count.
    """
    producer = Producer(producer_settings(cfg.kafka_bootstrap, cfg.compression))
    producer.list_topics(cfg.topic, timeout=10)
    return producer


def run_feed(
    cfg: FeedConfig,
    *,
    stop: threading.Event | None = None,
    max_events: int | None = None,
    flush_timeout: float = 10.0,
    params: MarketParams | None = None,
) -> FeedReport:
    """Create the topic if needed, then run the feed as configured: generated, replayed or parallel.

    Raises :class:`confluent_kafka.KafkaException` if the broker cannot be reached.
    """
    if cfg.processes > 1 and not cfg.replay:
        from feed_simulator.parallel import run_parallel  # it imports this module

        return run_parallel(cfg, stop=stop, max_events=max_events, flush_timeout=flush_timeout, params=params)
    partitions = ensure_topic(cfg.kafka_bootstrap, cfg.topic, cfg.partitions)
    if partitions != cfg.partitions:  # events go where the topic's own count puts them
        cfg = dataclasses.replace(cfg, partitions=partitions)
    producer = make_producer(cfg)
    if cfg.replay:
        from feed_simulator.replay import replay

        return replay(cfg, producer, stop=stop, max_events=max_events, flush_timeout=flush_timeout)
    return pump(cfg, producer, stop=stop, max_events=max_events, flush_timeout=flush_timeout, params=params)


def pump(
    cfg: FeedConfig,
    producer: ProducerLike,
    *,
    stop: StopFlag | None = None,
    max_events: int | None = None,
    flush_timeout: float = 10.0,
    params: MarketParams | None = None,
    plan: Plan | None = None,
    start_at: float | None = None,
    publish: Callable[[int, int, int], None] | None = None,
) -> FeedReport:
    """Produce events until ``stop`` is set, ``cfg.duration`` ends or ``max_events`` are sent.

    Flushes the producer for at most ``flush_timeout`` seconds before returning the report.
    ``stop`` may be set from another thread, process or a signal handler; the loop notices
    it within ~0.1 s. ``plan`` (default: every pair), ``start_at`` (a ``time.monotonic()``
    to begin at) and ``publish`` (called with the running delivered events, changes and
    failures instead of logging progress) are how :mod:`feed_simulator.parallel` runs parts.
    """
    stop = stop or threading.Event()
    plan = plan or whole_plan(cfg)
    seed = cfg.seed if cfg.seed is not None else secrets.randbits(32)
    scenario = SCENARIOS[cfg.scenario]
    market_params = params or MarketParams(max_levels=cfg.max_levels, max_actions=cfg.max_actions)
    source = EventSource(
        build_markets(plan.pairs, seed, market_params), scenario.picker(plan.weights, seed, plan.part)
    )
    schedule = scenario.schedule(plan.rate, seed)
    injector = None
    if cfg.faults.any:
        injector = FaultInjector(cfg.faults, random.Random(f"bookcast-faults:{seed}:{plan.part}"))
    recorder = None
    if cfg.record:
        header = {
            "seed": seed, "scenario": cfg.scenario, "pairs": list(plan.pairs), "rate": plan.rate,
            "max_actions": market_params.max_actions, "max_levels": market_params.max_levels,
            "started_ns": time.time_ns(), "faults": _rates(cfg),
        }  # fmt: skip
        recorder = Recorder(cfg.record, header)
    counter = DeliveryCounter()
    log.info(
        "feed: %d pairs into topic %s at %s, scenario %s, requested %s events/s, seed %d%s",
        len(plan.pairs),
        cfg.topic,
        cfg.kafka_bootstrap,
        cfg.scenario,
        f"{plan.rate:,.0f}",
        seed,
        f", recording to {cfg.record}" if recorder else "",
    )
    now = time.monotonic()
    start = now if start_at is None else start_at
    cpu_before = cpu_seconds()
    if start > now:
        stop.wait(start - now)
    limit = math.inf if max_events is None else max_events
    deadline = math.inf if cfg.duration is None else start + cfg.duration
    progress = None
    if publish is None:
        progress = Progress(
            lambda: (counter.delivered_events, counter.delivered_changes, counter.failed_events),
            cfg.progress_interval,
            start,
        )
    parts = KeyPartitions(cfg.partitions)  # each event's partition, named by the feed itself
    emit = _Emitter(producer, cfg.topic, counter, injector, recorder, start, parts)
    topic, callback, time_ns = cfg.topic, counter.callback, time.time_ns
    next_event, produce_fast = source.next_event, producer.produce
    sent = 0
    next_publish = start
    try:
        while sent < limit and not stop.is_set():
            now = time.monotonic()
            if now >= deadline:
                break
            due = int(min(schedule.due(now - start) - sent, MAX_BATCH, limit - sent))
            if due > 0:
                if emit.plain:
                    for _ in range(due):
                        event = next_event(time_ns())
                        try:
                            produce_fast(
                                topic, event.value, event.key, parts[event.key], callback(event.changes)
                            )
                        except BufferError:
                            produce(
                                producer,
                                topic,
                                event.value,
                                event.key,
                                callback(event.changes),
                                parts[event.key],
                            )
                else:
                    for _ in range(due):
                        emit.send(next_event(time_ns()))
                sent += due
            producer.poll(0)
            if progress is not None and progress.due(now):
                progress.report(now, len(producer), max(0, schedule.due(now - start) - sent))
            if publish is not None and now >= next_publish:
                publish(counter.delivered_events, counter.delivered_changes, counter.failed_events)
                next_publish = now + 0.2
            if due < MAX_BATCH:  # caught up with the schedule: wait for the next event's turn
                wait = start + schedule.time_of(sent) - time.monotonic()
                stop.wait(min(MAX_WAIT, max(MIN_WAIT, wait), max(0.0, deadline - now)))
        generated = time.monotonic() - start
    finally:
        unconfirmed = producer.flush(flush_timeout)
        elapsed = time.monotonic() - start
        if recorder is not None:
            recorder.close(int(elapsed * 1e9))
    if publish is not None:
        publish(counter.delivered_events, counter.delivered_changes, counter.failed_events)
    if unconfirmed:
        log.warning("feed: %d messages still unconfirmed after a %.0f s flush", unconfirmed, flush_timeout)
    report = FeedReport(
        seed=seed,
        requested_rate=plan.rate,
        elapsed=elapsed,
        produced_events=sent,
        delivered_events=counter.delivered_events,
        delivered_changes=counter.delivered_changes,
        failed_events=counter.failed_events + counter.failed_injected,
        undelivered_events=unconfirmed,
        scenario=cfg.scenario,
        pairs=len(plan.pairs),
        injected=dict(injector.counts) if injector is not None else {},
        injected_delivered=counter.delivered_injected,
        generate_elapsed=generated,
        cpu_seconds=cpu_seconds() - cpu_before,
    )
    if publish is None:
        log.info("%s", report.summary())
    return report


def cpu_seconds() -> float:
    """CPU time of this process so far (user + system, every thread: librdkafka's too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rates(cfg: FeedConfig) -> dict[str, float]:
    f = cfg.faults
    return {"duplicate": f.duplicate, "redelivery": f.redelivery, "malformed": f.malformed}


class _Emitter:
    """The slow path of the loop: a real event plus injected faults, each recorded if asked."""

    def __init__(
        self,
        producer: ProducerLike,
        topic: str,
        counter: DeliveryCounter,
        injector: FaultInjector | None,
        recorder: Recorder | None,
        start: float,
        parts: KeyPartitions,
    ) -> None:
        self.plain = injector is None and recorder is None
        self._parts = parts
        self._producer = producer
        self._topic = topic
        self._counter = counter
        self._injector = injector
        self._recorder = recorder
        self._start_ns = int(start * 1e9)

    def send(self, event: EncodedEvent) -> None:
        producer, topic, recorder = self._producer, self._topic, self._recorder
        parts = self._parts
        produce(
            producer, topic, event.value, event.key, self._counter.callback(event.changes), parts[event.key]
        )
        offset = time.monotonic_ns() - self._start_ns
        if recorder is not None:
            recorder.event(offset, event.key, event.changes, event.value)
        extras: Sequence = self._injector.after(event) if self._injector is not None else ()
        for extra in extras:
            produce(producer, topic, extra.value, extra.key, self._counter.on_injected, parts[extra.key])
            if recorder is not None:
                recorder.injected(offset, extra.key, extra.kind, extra.value)
