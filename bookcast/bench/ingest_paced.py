"""The paced pass of ``bookcast bench ingest``: md_service under a live feed at a set rate.

The drain passes (:mod:`bookcast.bench.ingest_run`) find md_service's ceiling, and their
latencies are those of a service that is behind on purpose: every window is as large as
the backlog makes it. The issue's goal is a latency *at* a sustained rate, so this pass
plays a live exchange instead: a producer process, on the CPUs md_service is not pinned
to, sends simulated events in real time at ``rate`` level changes per second (events
generated before the clock starts, each stamped with its real send time), while md_service
consumes them as they arrive. It reports whether md_service kept up (its backlog when the
feed stopped) and the window close -> Redis ack latencies of the steady state.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import uuid
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection

from confluent_kafka import Producer

from feed_simulator.market import MarketParams, build_markets
from feed_simulator.source import EventSource
from feed_simulator.topic import ensure_topic
from mdcore.instruments import default_pairs

XTS_PLACEHOLDER = 1_111_111_111_111_111_111  # 19 digits, replaced by the send time (ns) when sent
SLICE_S = 0.002  # the producer catches up with the schedule every 2 ms


@dataclass(frozen=True, slots=True)
class Feed:
    """What the paced producer planned and did."""

    topic: str
    partitions: int
    pairs: int
    events: int
    changes: int
    seconds: float  # how long sending took (the plan: events / rate)
    ended_at: float  # time.monotonic() (machine-wide) when the last event was sent
    behind_max_ms: float  # the most the producer ever trailed its own schedule

    @property
    def changes_per_s(self) -> float:
        """The rate the producer achieved (not the one asked for)."""
        return self.changes / self.seconds


def producer_main(
    pipe: Connection, bootstrap: str, topic: str, pairs: int, seed: int, rate: float, seconds: float
) -> None:
    """Generate ``rate * seconds`` level changes of events, wait for "go", then send them in real time."""
    source = EventSource(build_markets(default_pairs(pairs), seed, MarketParams()))
    # One blob and offsets, not a bytes object per event: each encoded event leaves a hole
    # of its encoder's buffer behind if kept (a gigabyte for a few hundred thousand events).
    keys = [pair.encode() for pair in source.pairs]
    blob, ends, key_of = bytearray(), array("Q"), array("H")
    index = {key: i for i, key in enumerate(keys)}
    changes = 0
    while changes < rate * seconds:
        event = source.next_event(XTS_PLACEHOLDER)
        blob += event.value
        ends.append(len(blob))
        key_of.append(index[event.key])
        changes += event.changes
    count = len(ends)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 20,  # as the feed simulator sends
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    producer.list_topics(topic, timeout=10)
    pipe.send({"events": count, "changes": changes})
    pipe.recv()  # "go": md_service owns the partitions
    placeholder = str(XTS_PLACEHOLDER).encode()
    per_s = count / seconds
    started = time.monotonic()
    sent = 0
    behind = 0.0
    while sent < count:
        now = time.monotonic()
        due = min(count, int((now - started) * per_s) + 1)
        behind = max(behind, (due - sent) / per_s)
        xts = str(time.time_ns()).encode()
        while sent < due:
            value = bytes(blob[ends[sent - 1] if sent else 0 : ends[sent]]).replace(placeholder, xts, 1)
            try:
                producer.produce(topic, value, keys[key_of[sent]])
            except BufferError:
                producer.poll(0.01)
                continue
            sent += 1
        producer.poll(0)
        if sent < count:
            time.sleep(SLICE_S)
    took = time.monotonic() - started
    left = producer.flush(60)
    pipe.send({"sent": sent - left, "seconds": took, "ended_at": started + took, "behind_ms": behind * 1000})


class PacedFeed:
    """The producer process: planned in :meth:`start`, released by :meth:`go`, read by :meth:`result`."""

    def __init__(
        self, bootstrap: str, pairs: int, partitions: int, seed: int, rate: float, seconds: float
    ) -> None:
        self.topic = f"bench-paced-{pairs}p-{uuid.uuid4().hex[:8]}"
        self.pairs, self.partitions = pairs, partitions
        ensure_topic(bootstrap, self.topic, partitions)
        ctx = mp.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=producer_main, args=(child, bootstrap, self.topic, pairs, seed, rate, seconds), daemon=True
        )
        self.events = self.changes = 0

    def start(self, cpus: set[int]) -> None:
        """Start generating on ``cpus`` (not md_service's; empty: anywhere) and wait until ready."""
        self._proc.start()
        if cpus and self._proc.pid is not None:
            os.sched_setaffinity(self._proc.pid, cpus)
        planned = self._receive(120, "get ready")
        self.events, self.changes = planned["events"], planned["changes"]

    def go(self) -> None:
        self._pipe.send("go")

    def result(self, timeout: float) -> Feed:
        done = self._receive(timeout, "finish")
        if done["sent"] != self.events:
            raise RuntimeError(f"the paced producer confirmed {done['sent']} of {self.events} events")
        return Feed(self.topic, self.partitions, self.pairs, self.events, self.changes, done["seconds"],
                    done["ended_at"], done["behind_ms"])  # fmt: skip

    def _receive(self, timeout: float, what: str) -> dict:
        """The producer's next report, or a clear error if it died or took too long."""
        if not self._pipe.poll(timeout):
            raise RuntimeError(f"the paced producer did not {what} within {timeout:.0f} s")
        try:
            return self._pipe.recv()
        except EOFError:
            self._proc.join(5)
            raise RuntimeError(
                f"the paced producer exited (code {self._proc.exitcode}) before it could {what}"
            ) from None

    def close(self) -> None:
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
