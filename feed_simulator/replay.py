"""Replaying a recording into Kafka at the recorded speed, scaled, or as fast as possible.

The same messages go out in the same order (faults included), so a benchmark run twice
from one recording feeds md_service exactly the same input. Exchange times (``xts``) are
moved to the replay: shifted so the recording's start is the replay's start and scaled by
``--speed``, so latencies measured downstream stay meaningful; at ``--speed 0`` each
message gets its send time. Nothing else in a message changes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter

from feed_simulator.config import FeedConfig
from feed_simulator.delivery import DeliveryCounter, ProducerLike, produce
from feed_simulator.recording import RecordingReader
from feed_simulator.report import FeedReport, Progress
from mdcore.partitioning import KeyPartitions

log = logging.getLogger(__name__)

_XTS = re.compile(rb'"xts":(\d+)')
POLL_EVERY = 256  # messages between two services of the producer when running flat out
MAX_WAIT = 0.1


def restamp(value: bytes, xts: int) -> bytes:
    """``value`` with its first ``"xts"`` replaced by ``xts`` (unchanged if it has none)."""
    return _XTS.sub(b'"xts":%d' % xts, value, count=1)


def shifted_xts(value: bytes, recorded_start_ns: int, replay_start_ns: int, speed: float) -> bytes:
    """Move the exchange time of ``value`` from the recording's timeline to the replay's."""
    match = _XTS.search(value)
    if match is None:
        return value
    xts = replay_start_ns + int((int(match.group(1)) - recorded_start_ns) / speed)
    return value[: match.start(1)] + b"%d" % xts + value[match.end(1) :]


def replay(
    cfg: FeedConfig,
    producer: ProducerLike,
    *,
    stop: threading.Event | None = None,
    max_events: int | None = None,
    flush_timeout: float = 10.0,
) -> FeedReport:
    """Send ``cfg.replay`` to ``cfg.topic``; ``max_events`` counts real events (faults go along)."""
    stop = stop or threading.Event()
    speed, topic = cfg.speed, cfg.topic
    counter = DeliveryCounter()
    injected: Counter[str] = Counter()
    with RecordingReader(cfg.replay or "") as reader:
        header = reader.header
        recorded_start = int(header.get("started_ns", 0))
        log.info(
            "replaying %s (%s, seed %s, %d pairs) into %s at %s",
            cfg.replay,
            header.get("scenario"),
            header.get("seed"),
            len(header.get("pairs", ())),
            topic,
            f"{speed:g}x" if speed else "full speed",
        )
        start = time.monotonic()
        start_ns = time.time_ns()
        progress = Progress(
            lambda: (counter.delivered_events, counter.delivered_changes, counter.failed_events),
            cfg.progress_interval,
            start,
        )
        sent = messages = 0
        parts = KeyPartitions(cfg.partitions)
        try:
            for record in reader:
                if max_events is not None and record.kind is None and sent >= max_events:
                    break
                if speed:
                    ahead = start + record.offset_ns / 1e9 / speed - time.monotonic()
                    while ahead > 0.0005 and not stop.is_set():  # wait for the record's turn
                        producer.poll(0)
                        stop.wait(min(ahead, MAX_WAIT))
                        ahead = start + record.offset_ns / 1e9 / speed - time.monotonic()
                        _maybe_progress(progress, producer)
                    value = shifted_xts(record.value, recorded_start, start_ns, speed)
                else:
                    value = restamp(record.value, time.time_ns())
                home = parts[record.key]
                if record.kind is None:
                    produce(producer, topic, value, record.key, counter.callback(record.changes), home)
                    sent += 1
                else:
                    produce(producer, topic, value, record.key, counter.on_injected, home)
                    injected[record.kind] += 1
                messages += 1
                if messages % POLL_EVERY == 0:
                    producer.poll(0)
                    if stop.is_set():
                        break
                    _maybe_progress(progress, producer)
            generated = time.monotonic() - start
        finally:
            unconfirmed = producer.flush(flush_timeout)
            elapsed = time.monotonic() - start
        if reader.trailer is None and not stop.is_set() and (max_events is None or sent < max_events):
            log.warning("%s has no end line: the recording was cut short; sent what was there", cfg.replay)
    rate = float(header.get("rate", 0.0)) * speed
    report = FeedReport(
        seed=header.get("seed"),
        requested_rate=rate,
        elapsed=elapsed,
        produced_events=sent,
        delivered_events=counter.delivered_events,
        delivered_changes=counter.delivered_changes,
        failed_events=counter.failed_events + counter.failed_injected,
        undelivered_events=unconfirmed,
        scenario=str(header.get("scenario", "?")),
        mode="replay",
        pairs=len(header.get("pairs", ())),
        injected=dict(injected),
        injected_delivered=counter.delivered_injected,
        generate_elapsed=generated,
    )
    log.info("%s", report.summary())
    return report


def _maybe_progress(progress: Progress, producer: ProducerLike) -> None:
    now = time.monotonic()
    if progress.due(now):
        progress.report(now, len(producer))
