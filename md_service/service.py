"""The md_service loop: consume, apply, close windows on time, publish, then commit.

Single-threaded on purpose: one core applies events in Kafka order, and a window is
published to Redis before any offset it covers is committed, so a crash at any instant
loses nothing and applies nothing twice (redelivered events are skipped by ``xseq``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

import redis

from md_service.config import MdConfig
from md_service.kafka_source import KafkaSource
from md_service.pair_stream import EventOutcome, PairStream, WindowOutput, new_epoch
from md_service.redis_store import RedisStore
from mdcore.errors import InvalidEventError
from mdcore.events import decode_event

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0


class MdService:
    """Owns the pair streams of the partitions this instance is assigned."""

    def __init__(
        self,
        cfg: MdConfig,
        store: RedisStore,
        source_factory: Callable[[Callable[[list[int]], None]], KafkaSource],
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.clock_ns = clock_ns
        self.streams: dict[str, PairStream] = {}
        self.partition_of: dict[str, int] = {}
        self.fenced: set[str] = set()
        self.counters: Counter[str] = Counter()
        self._invalid_logged: set[str] = set()
        self.stop_event = threading.Event()
        self.source = source_factory(self._on_revoke)

    # --- events -------------------------------------------------------------------

    def _stream_for(self, pair: str) -> PairStream:
        stream = self.streams.get(pair)
        if stream is not None:
            return stream
        loaded = self.store.load(pair)
        if loaded is None:
            epoch = new_epoch(self.clock_ns())
            stream = PairStream(pair, epoch)
            log.info("%s: no stored stream, starting epoch %s", pair, epoch)
        else:
            state, local = loaded
            stream = PairStream(pair, state.epoch, state.seq, state.xseq, local.book, state.snap_seq)
            log.info("%s: resumed epoch %s at seq %d (xseq %d)", pair, state.epoch, state.seq, state.xseq)
        self.streams[pair] = stream
        return stream

    def handle_batch(self, messages: list) -> None:
        for msg in messages:
            try:
                event = decode_event(msg.value())
            except InvalidEventError as exc:
                self._count_invalid(msg, exc)
                continue
            if event.pair in self.fenced:
                self.counters["events_fenced"] += 1
                continue
            self.partition_of[event.pair] = msg.partition()
            outcome = self._stream_for(event.pair).apply(event)
            self.counters[f"events_{outcome.value}"] += 1
            if outcome is EventOutcome.APPLIED_AFTER_GAP:
                log.warning("%s: exchange sequence gap before xseq %d", event.pair, event.xseq)

    def _count_invalid(self, msg: object, exc: InvalidEventError) -> None:
        kind = type(exc).__name__
        self.counters["events_invalid"] += 1
        if kind not in self._invalid_logged:  # once per kind: a poison stream must not flood the log
            self._invalid_logged.add(kind)
            log.error(
                "skipping invalid event at %s[%d]@%d: %s (further %s errors are only counted)",
                msg.topic(), msg.partition(), msg.offset(), exc, kind,  # type: ignore[attr-defined]
            )  # fmt: skip

    # --- windows ------------------------------------------------------------------

    def close_windows(self) -> list[WindowOutput]:
        now = self.clock_ns()
        outputs = []
        for stream in self.streams.values():
            out = stream.close_window(now, self.cfg.snapshot_every)
            if out is not None:
                outputs.append(out)
        return outputs

    def publish(self, outputs: list[WindowOutput]) -> bool:
        """Write a window to Redis, retrying with backoff; False only if stopped first."""
        if not outputs:
            return True
        delay = 0.05
        while True:
            try:
                started = time.perf_counter()
                rejected = self.store.write_window(outputs)
                self.counters["publish_ms_total"] += int((time.perf_counter() - started) * 1000)
                break
            except redis.RedisError as exc:
                self.counters["redis_errors"] += 1
                log.warning("redis write failed (%s); retrying in %.2fs", exc, delay)
                if self.stop_event.wait(delay):
                    return False
                delay = min(delay * 2, MAX_BACKOFF_S)
        self.counters["windows"] += 1
        self.counters["deltas"] += len(outputs) - len(rejected)
        for pair, reason in rejected.items():
            self._fence(pair, reason)
        return True

    def _fence(self, pair: str, reason: str) -> None:
        """Another writer owns the pair's stream (or Redis lost it): stop publishing for it."""
        self.counters["fenced"] += 1
        stream = self.streams.pop(pair, None)
        if reason == "no state" and stream is not None:
            # Redis lost the stream: keep the (correct) book, start a new epoch so clients resync.
            epoch = new_epoch(self.clock_ns())
            self.streams[pair] = PairStream(pair, epoch, 0, stream.xseq, stream.book)
            self.streams[pair].window = stream.window
            log.error("%s: stored stream vanished; continuing in new epoch %s", pair, epoch)
            return
        self.fenced.add(pair)
        log.error("%s: fenced, another instance publishes it (%s); not publishing it any more", pair, reason)

    def flush(self, asynchronous_commit: bool = True) -> None:
        """Close and publish every open window, then commit what they covered."""
        if self.publish(self.close_windows()):
            self.source.commit(asynchronous=asynchronous_commit)

    def _on_revoke(self, partitions: list[int]) -> None:
        self.flush(asynchronous_commit=False)
        lost = set(partitions)
        for pair in [p for p, part in self.partition_of.items() if part in lost]:
            self.streams.pop(pair, None)
            self.partition_of.pop(pair, None)
        self.fenced.clear()  # a new assignment decides anew who owns what

    # --- loop ---------------------------------------------------------------------

    def run(self) -> None:
        window_s = self.cfg.window_ms / 1000
        next_close = time.monotonic() + window_s
        next_status = time.monotonic() + self.cfg.status_interval_s
        try:
            while not self.stop_event.is_set():
                timeout = max(0.0, next_close - time.monotonic())
                self.handle_batch(self.source.poll(timeout))
                now = time.monotonic()
                if now >= next_close:
                    self.flush()
                    next_close += window_s
                    if next_close <= time.monotonic():  # fell behind: do not burst windows
                        self.counters["windows_late"] += 1
                        next_close = time.monotonic() + window_s
                if now >= next_status:
                    next_status = now + self.cfg.status_interval_s
                    self.log_status()
            self.flush(asynchronous_commit=False)
        finally:
            self.source.close()
            self.store.close()

    def log_status(self) -> None:
        c = self.counters
        log.info(
            "pairs=%d windows=%d deltas=%d events=%d duplicates=%d invalid=%d gaps=%d fenced=%d",
            len(self.streams), c["windows"], c["deltas"], c["events_applied"] + c["events_applied_after_gap"],
            c["events_duplicate"], c["events_invalid"], c["events_applied_after_gap"], c["fenced"],
        )  # fmt: skip

    def stop(self) -> None:
        self.stop_event.set()
