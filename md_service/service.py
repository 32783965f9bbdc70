"""The md_service loop: consume, apply, close windows on time, write them to Redis, fenced.

Single-threaded on purpose: one core applies events in Kafka order, and each window is
written to Redis in one atomic, fenced step together with the Kafka offsets it covers
(:mod:`md_service.window_script`). So Redis always holds exactly "after window S" for
every pair *and* the place in Kafka where "after S" begins: a crash at any instant loses
nothing and applies nothing twice, and the next owner of a partition starts reading
exactly there (redelivered events are still recognised by ``xseq``, as a second guard).

Which partitions it writes is kept in :mod:`md_service.leases`: the consumer group's
assignments, a heartbeat per partition in Redis, warm takeovers by followers (a hot standby)
and cold ones by group members when a writer is gone, and a release on a clean stop.

What happens when a write is refused:

- the partition belongs to another instance now (its owner token in Redis is not ours):
  this instance was a zombie; it writes nothing more for the partition, and keeps reading it
  as a follower (warm books) if the group still gives it to us or we are a standby, else
  forgets it;
- Redis has no owner for the partition (it lost its data): claim it again if still free,
  and continue every pair of it in a new epoch from the (correct) book in memory;
- a pair's stored position is not what we wrote last (Redis lost writes): continue that
  pair in a new epoch, whose first delta carries the whole book, so clients resync.

The same goes for a partition whose claim finds Redis behind the writes this instance saw
confirmed (:mod:`md_service.write_marks`): Redis lost them, and its pairs, restored at
older seqs than clients may hold, continue in new epochs instead of republishing them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import redis

from md_service.cadence import WindowCadence
from md_service.claim_script import Claim
from md_service.config import MdConfig
from md_service.counters import MdCounters
from md_service.dead_letter import DeadLetters
from md_service.intake import Intake, Loaded
from md_service.kafka_link import KafkaLink
from md_service.kafka_source import OnAssign, OnRevoke
from md_service.leases import Leases
from md_service.ownership import Ownership
from md_service.pair_stream import PairStream, WindowOutput
from md_service.ports import MdSource, MdStore
from md_service.window_writes import MAX_BACKOFF_S, OUTAGE_LOG_EVERY_S, WindowWrites
from md_service.write_marks import open_marks
from mdcore.partitioning import partition_of

log = logging.getLogger("md_service")

T = TypeVar("T")
TICK_CHECK_EVERY = 100  # messages applied between looks at the clock (about 2 ms of work)
SourceFactory = Callable[[OnAssign, OnRevoke], MdSource]  # KafkaSource, or a test's fake


class MdService:
    """Owns the pair streams of the partitions this instance is assigned."""

    def __init__(
        self,
        cfg: MdConfig,
        store: MdStore,
        source_factory: SourceFactory,
        clock_ns: Callable[[], int] = time.time_ns,
        dead_letters: DeadLetters | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.clock_ns = clock_ns
        self.counters = MdCounters()
        self.ownership = Ownership()
        self.dead_letters = dead_letters
        self.stop_event = threading.Event()
        self.redis_down_since: float | None = None
        self._next_outage_log = 0.0
        self.marks = open_marks(cfg.state_dir, cfg.redis_prefix, cfg.topic)
        self.datasets: dict[int, str] = {}  # partition -> the id of its Redis dataset, per the last claim
        self.leases = Leases(self)
        self.windows = WindowWrites(self)
        self.source = source_factory(self._on_assign, self._on_revoke)
        self.intake = Intake(
            self.ownership, self.counters, self._load, self.source, dead_letters, clock_ns, cfg.max_xseq_jump,
            home_of=lambda pair: partition_of(pair, cfg.topic_partitions),
        )  # fmt: skip
        # None for a source without one (the tests' scripted source): reported as unknown
        self.kafka_link: KafkaLink | None = getattr(self.source, "link", None)
        if self.kafka_link is not None:
            self.kafka_link.on_error = self._kafka_link_error

    def _kafka_link_error(self, text: str) -> None:
        """A client-level Kafka error (librdkafka's ``error_cb``): counted and shown like a message's."""
        self.counters.kafka_errors += 1
        self.intake.last_kafka_error = text

    @property
    def streams(self) -> dict[str, PairStream]:
        return self.ownership.streams

    # --- Redis with retry -----------------------------------------------------------

    def _retry(self, what: str, call: Callable[[], T], deadline: float | None = None) -> T | None:
        """``call()`` until Redis answers; None if stopped (or past ``deadline``, monotonic) first."""
        delay = 0.02
        while True:
            try:
                result = call()
            except redis.RedisError as exc:
                self.counters.redis_errors += 1
                now = time.monotonic()
                if self.redis_down_since is None:
                    self.redis_down_since = now
                if now >= self._next_outage_log:
                    self._next_outage_log = now + OUTAGE_LOG_EVERY_S
                    log.warning("redis unavailable for %s (%s: %s); retrying, nothing is consumed meanwhile",
                                what, type(exc).__name__, exc)  # fmt: skip
                if deadline is not None and now + delay > deadline:
                    return None
                if self.stop_event.wait(delay):
                    return None
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            if self.redis_down_since is not None:
                log.warning("redis is back after %.1f s", time.monotonic() - self.redis_down_since)
                self.redis_down_since = None
                self._next_outage_log = 0.0
            return result

    def _load(self, pair: str) -> Loaded | None:
        return self._retry(f"loading {pair}", lambda: self.store.load(pair))

    # --- rebalance ------------------------------------------------------------------

    def _on_assign(self, partitions: list[int]) -> dict[int, int | None] | None:
        """The group gave us ``partitions``: claim them; returns where reading (re)starts for those
        restored from Redis (they are fetched from there)."""
        return self.leases.assigned(partitions)

    def _behind(self, claim: Claim, partitions: Collection[int]) -> set[int]:
        """Claimed partitions whose write counter in Redis is below what we saw it confirm."""
        marks = self.marks
        if marks is None:
            return set()
        behind = set()
        for p, count in claim.writes.items():
            if p not in partitions:
                continue
            seen = marks.read(p, claim.datasets.get(p, ""))
            if seen is not None and seen > count:
                behind.add(p)
                log.error("partition %d: Redis holds %d window writes but confirmed %d to this instance: it "
                          "lost writes; its pairs continue in new epochs", p, count, seen)  # fmt: skip
        self.counters.writes_lost += len(behind)
        return behind

    def _on_revoke(self, partitions: list[int], lost: bool) -> None:
        """The group moved ``partitions`` (see :meth:`Leases.revoked`: written until fenced)."""
        self.leases.revoked(partitions, lost)

    # --- windows (md_service.window_writes) ------------------------------------------

    def close_windows(self, check: bool, partitions: Collection[int] | None = None) -> list[WindowOutput]:
        return self.windows.close_windows(check, partitions)

    def write_window(
        self, check: bool, deadline: float | None = None, partitions: Collection[int] | None = None
    ) -> bool:
        """Close the open windows (all, or those of ``partitions``) and write them atomically.

        Returns False if stopped (or past ``deadline``) before Redis took the write.
        """
        return self.windows.write(check, deadline, partitions)

    def run(self) -> None:
        """Consume and write windows until :meth:`stop`.

        Every pair's window lasts ``window_ms`` and ends on the wall clock's multiples of it;
        the partitions take turns within ``slot_span_ms`` after that
        (:class:`~md_service.cadence.WindowCadence`): each tick closes and writes the
        windows of the partitions whose turn it is, so each write is small and reaches
        Redis sooner, and gateways still see one burst per window. A partition's pairs
        always close together, so the offset stored with them covers exactly what they
        applied. A consumed batch is applied in chunks of ``TICK_CHECK_EVERY`` messages with
        a tick between them when one is due, so a large batch never makes a tick late (a
        late tick would close two slots in one write).
        """
        cfg = self.cfg
        cadence = WindowCadence(
            cfg.window_ms, cfg.window_slots, cfg.check_interval_ms, time.monotonic(),
            span_ms=cfg.slot_span_ms, wall_now=self.clock_ns() / 1e9,
        )  # fmt: skip
        next_status = time.monotonic() + cfg.status_interval_s
        handle = self.intake.handle_batch
        leases = self.leases
        try:
            if cfg.standby and not self._start_following():
                return
            while not self.stop_event.is_set():
                batch = self.source.poll(max(0.0, cadence.next_tick - time.monotonic()))
                if len(batch) > TICK_CHECK_EVERY:
                    skipping: set[int] = set()  # one batch's rewound partitions, across its chunks
                    for start in range(0, len(batch), TICK_CHECK_EVERY):
                        handle(batch[start : start + TICK_CHECK_EVERY], skipping)
                        self._tick(cadence)
                elif batch:
                    handle(batch)
                now = self._tick(cadence)
                if now >= leases.next_at:
                    leases.tick(now)  # between batches: a takeover may move where a partition is read
                if now >= next_status:
                    next_status = now + cfg.status_interval_s
                    self.log_status()
            self.stop_event.clear()  # one last bounded attempt to write what is open ...
            if self.write_window(check=False, deadline=time.monotonic() + 2.0):
                leases.release_all()  # ... then give the partitions away: the next writer need not wait
            self.log_status()
        finally:
            self.source.close()
            if self.dead_letters is not None:
                self.dead_letters.close()
            if self.marks is not None:
                self.marks.close()
            self.store.close()

    def _start_following(self) -> bool:
        """A standby: follow its partitions (all of the topic's unless set) from where Redis is."""
        wanted = list(self.cfg.partitions)
        while not wanted:
            found = self.source.partitions() if hasattr(self.source, "partitions") else None
            if found:
                wanted = found
            elif self.stop_event.wait(0.1):
                return False
        return self.leases.follow(wanted)

    def _tick(self, cadence: WindowCadence) -> float:
        """Write the windows of the slots whose turn has come, if any; returns the time asked.

        A followed partition's windows are dropped instead: only its books matter.
        """
        now = time.monotonic()
        tick = cadence.due(now)
        if tick is not None:
            if tick.late:
                self.counters.windows_late += 1
            slots = cadence.slots
            owned, streams = self.ownership.partitions, self.streams
            due = []
            for p, part in owned.items():
                if p % slots not in tick.slots:
                    continue
                if not part.following:
                    due.append(p)
                    continue
                for pair in part.pairs:
                    streams[pair].discard_window()
            self.write_window(tick.check, partitions=due)
        return now

    def status(self) -> dict[str, Any]:
        """The instance's health, ownership and counters, as its status reports them.

        Read by the status thread (:class:`md_service.status.StatusPublisher`, which adds the
        interval's rates, latencies and consumer lag and writes it to the status bus, off the
        window loop) and by tests. ``redis`` and ``kafka`` are ``up`` or ``down`` (``kafka``:
        ``unknown`` for a source without a link), with ``*_down_s`` the outage so far.
        """
        redis_down, link = self.redis_down_since, self.kafka_link
        kafka_down = link.down_for() if link is not None else None
        ownership = self.ownership
        return {
            "role": "standby" if self.cfg.standby else "active",
            "redis": "up" if redis_down is None else "down",
            "redis_down_s": None if redis_down is None else round(time.monotonic() - redis_down, 1),
            "kafka": "unknown" if link is None else "up" if kafka_down is None else "down",
            "kafka_down_s": None if kafka_down is None else round(kafka_down, 1),
            "kafka_last_error": self.intake.last_kafka_error,
            "partitions": ownership.owned_numbers(),
            "following": ownership.following_numbers(),
            "partitions_fenced": ownership.fenced_numbers(),
            "pairs": len(self.streams),
            "counters": self.counters.as_dict(),
        }

    def log_status(self) -> None:
        c = self.counters
        publish_p99_ms = c.latency.histograms["close_to_publish"].percentile(99) / 1000  # since start
        log.info(
            "status: redis %s; kafka %s; partitions %s (following %s); pairs %d; events %d (dup %d, late %d, "
            "invalid %d %s); exchange gaps %d; windows %d, deltas %d, publish p99 %.1f ms; "
            "refused %d; epochs %d; replays %d",
            "up" if self.redis_down_since is None else "DOWN",
            "?" if self.kafka_link is None else "up" if self.kafka_link.up else "DOWN",
            self.ownership.owned_numbers(),
            self.ownership.following_numbers(), len(self.streams), c.events_applied, c.events_duplicate,
            c.events_late, c.events_invalid, dict(c.invalid), c.exchange_gaps, c.windows, c.deltas,
            publish_p99_ms, c.pairs_refused, c.epochs_started,
            c.replays,
        )  # fmt: skip

    def stop(self) -> None:
        self.stop_event.set()
