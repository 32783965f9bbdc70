"""Kafka messages in, books updated: the hot path of md_service.

Every message is checked in this order, and a failed check never touches a book:

1. a Kafka error: counted (and logged, rate-limited);
2. its partition must be owned here (not lost to another instance);
3. the value must be a valid event (:func:`mdcore.events.parse_event`) whose Kafka key is
   its pair, and the pair must live in this partition: otherwise it is counted by kind,
   logged (rate-limited) with topic/partition/offset, and optionally dead-lettered;
4. its ``xseq`` may jump at most ``max_xseq_jump`` past the pair's last one: a garbled
   ``xseq`` (2^64-1, say) applied would make every later genuine event look old and freeze
   the pair for good, so it is rejected like malformed input (kind ``xseq_jump``);
5. the event's ``xseq`` decides: next -> applied; jump -> applied and the gap counted;
   at or below the last -> skipped as a duplicate, or as a late (reordered) event.

Every log line an event can cause goes through one :class:`LogThrottle`: a poison
stream is counted in full but logged once per kind per 10 s.

A pair met for the first time is restored from Redis; a pair Redis knows nothing about
starts a new stream if its first event is the exchange's first (``xseq`` 1), and otherwise
its partition is read again from the start, once, so its book is rebuilt from every event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import KafkaError, Message

from md_service.config import MAX_XSEQ_JUMP
from md_service.counters import MdCounters
from md_service.dead_letter import DeadLetters
from md_service.ownership import OwnedPartition, Ownership
from md_service.pair_stream import EventOutcome, PairStream, new_epoch
from mdcore.errors import InvalidEventError
from mdcore.events import parse_event
from mdcore.local_book import LocalBook
from mdcore.messages import StreamPosition
from mdcore.redis_layout import StoredState
from mdruntime.log_throttle import LogThrottle

log = logging.getLogger("md_service")

# pair -> (stored state or None, rebuilt book or None if the stored stream does not add up);
# None overall when the service is stopping.
Loaded = tuple[StoredState | None, LocalBook | None]  # what Redis holds of a pair (md_service.redis_store)
Loader = Callable[[str], Loaded | None]


class Rewinder(Protocol):
    def rewind(self, partition: int) -> None: ...


class Intake:
    """Applies batches of Kafka messages to the owned pair streams."""

    def __init__(
        self,
        ownership: Ownership,
        counters: MdCounters,
        load: Loader,
        source: Rewinder,
        dead_letters: DeadLetters | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        max_xseq_jump: int = MAX_XSEQ_JUMP,
        *,
        home_of: Callable[[str], int],
        throttle: LogThrottle | None = None,
    ) -> None:
        self.ownership = ownership
        self.counters = counters
        self.load = load
        self.source = source
        self.dead_letters = dead_letters
        self.clock_ns = clock_ns
        self.max_xseq_jump = max_xseq_jump
        self.throttle = throttle or LogThrottle(log)
        self.home_of = home_of  # pair -> its partition (mdcore.partitioning): the one rule
        self.last_kafka_error: str | None = None

    def handle_batch(self, messages: list[Message], skipping: set[int] | None = None) -> None:
        """Apply consumed messages in order. ``skipping`` carries the partitions rewound so far
        in one consumed batch when it is handled in chunks: the rest of the batch is stale for them.
        """
        partitions = self.ownership.partitions
        streams = self.ownership.streams
        counters = self.counters
        if skipping is None:
            skipping = set()
        max_jump = self.max_xseq_jump
        applied = changes_total = 0
        for msg in messages:
            err = msg.error()
            if err is not None:
                self._kafka_error(err)
                continue
            number = msg.partition()
            part = partitions.get(number)
            if part is None:
                counters.events_unowned += 1
                continue
            if skipping and number in skipping:
                continue
            part.position = msg.offset() + 1
            value = msg.value()
            try:
                if value is None:
                    raise InvalidEventError("no value (a tombstone)", "empty")
                pair, xseq, xts, changes = parse_event(value)
            except InvalidEventError as exc:
                self._invalid(msg, exc)
                continue
            stream = streams.get(pair)
            if stream is None:
                stream = self._new_stream(msg, pair, part, xseq)
                if stream is None:
                    if part.rewound and part.position is None:
                        skipping.add(number)
                    continue
            elif stream.partition != number or msg.key() != stream.key:
                self._invalid(msg, self._misplaced(msg, stream.pair, stream.partition))
                continue
            if xseq - stream.xseq > max_jump:
                self._invalid(msg, self._too_far(pair, xseq, stream.xseq))
                continue
            outcome = stream.apply(xseq, xts, changes)
            if outcome is EventOutcome.APPLIED:
                applied += 1
                changes_total += len(changes)
            else:
                self._count_outcome(stream, outcome, xseq, len(changes))
        counters.events_applied += applied
        counters.level_changes += changes_total

    def _count_outcome(self, stream: PairStream, outcome: EventOutcome, xseq: int, changes: int) -> None:
        counters = self.counters
        if outcome is EventOutcome.APPLIED_AFTER_GAP:
            counters.events_applied += 1
            counters.level_changes += changes
            counters.exchange_gaps += 1
            lo, hi = stream.missing[-1]
            counters.exchange_missing += hi - lo + 1
            self.throttle.warning("gap", "%s: exchange sequence gap: xseq %d..%d never arrived (yet)",
                                  stream.pair, lo, hi)  # fmt: skip
        elif outcome is EventOutcome.LATE:
            counters.events_late += 1
            self.throttle.warning("late", "%s: xseq %d arrived after newer events; skipped (order matters)",
                                  stream.pair, xseq)  # fmt: skip
        else:
            counters.events_duplicate += 1

    def _too_far(self, pair: str, xseq: int, last: int) -> InvalidEventError:
        return InvalidEventError(
            f"{pair}: xseq {xseq} jumps more than {self.max_xseq_jump} past {last} (a garbled xseq?)",
            "xseq_jump",
        )

    @staticmethod
    def _misplaced(msg: Message, pair: str, partition: int | None) -> InvalidEventError:
        if partition is not None and partition != msg.partition():
            return InvalidEventError(
                f"{pair} lives in partition {partition}, not {msg.partition()}", "wrong_partition"
            )
        return InvalidEventError(f"Kafka key {msg.key()!r} is not the event's pair {pair}", "wrong_key")

    def _new_stream(self, msg: Message, pair: str, part: OwnedPartition, xseq: int) -> PairStream | None:
        """The stream of a pair met for the first time; None if the message must be skipped.

        Checked first, because a new stream could otherwise start a rival of another
        instance's: the key must be the pair, and the pair must not live in another partition.
        """
        if msg.key() != pair.encode():
            self._invalid(msg, self._misplaced(msg, pair, None))
            return None
        home = self.home_of(pair)
        if home != part.number:
            self._invalid(msg, self._misplaced(msg, pair, home))
            return None
        loaded = self.load(pair)
        if loaded is None:  # stopping
            return None
        state, local = loaded
        if part.following:
            return self._new_followed_stream(pair, part, xseq, state, local)
        if state is not None and local is not None:
            stream = PairStream.restored(
                pair, part.number, state.epoch, state.seq, state.xseq, state.snap_seq, local.book
            )
            self.ownership.add_stream(stream)
            if part.behind:  # Redis lost writes of this partition: clients may hold later seqs
                stream.restart_epoch(new_epoch(self.clock_ns()), StreamPosition(state.epoch, state.seq))
                self.counters.epochs_started += 1
            log.info("%s: resumed epoch %s at seq %d (xseq %d)%s", pair, state.epoch, state.seq, state.xseq,
                     f"; continuing in epoch {stream.epoch}" if part.behind else "")  # fmt: skip
            return stream
        replacing = StreamPosition(state.epoch, state.seq) if state is not None else None
        if xseq > 1 and not part.rewound:
            # Redis has no usable stream for a pair whose earlier events this partition holds:
            # read the partition again from the start (the other pairs skip what they applied).
            part.rewound = True
            part.position = None
            if replacing is not None:
                self.ownership.replacing[pair] = replacing
            self.counters.replays += 1
            self.throttle.warning("reread", "%s: no usable stored stream and first event xseq %d; re-reading "
                                  "partition %d", pair, xseq, part.number)  # fmt: skip
            self.source.rewind(part.number)
            return None
        if xseq > self.max_xseq_jump:  # not a start: a garbled xseq, which would freeze the pair
            self._invalid(msg, self._too_far(pair, xseq, 0))
            return None
        if xseq > 1:
            self.throttle.error("no_start", "%s: partition %d holds no events before xseq %d; the book "
                                "starts from there", pair, part.number, xseq)  # fmt: skip
        epoch = new_epoch(self.clock_ns())
        stored = self.ownership.replacing.pop(pair, replacing)
        stream = PairStream(pair, epoch, partition=part.number, stored=stored)
        stream.full_next = True
        self.ownership.add_stream(stream)
        self.counters.epochs_started += 1
        log.info("%s: starting epoch %s", pair, epoch)
        return stream

    def _new_followed_stream(
        self, pair: str, part: OwnedPartition, xseq: int, state: StoredState | None, local: LocalBook | None
    ) -> PairStream | None:
        """A pair met while following (another instance writes it): never rewinds, never publishes.

        A stored stream is taken as the start if it connects to this event (or is ahead: the
        events it holds are skipped by ``xseq``); a pair Redis has nothing of starts a book at
        ``xseq`` 1. Otherwise this book would miss events the writer applied: the partition can
        only be taken over cold, from Redis (:mod:`md_service.handover`).
        """
        if state is not None and local is not None and state.xseq >= xseq - 1:
            stream = PairStream.restored(
                pair, part.number, state.epoch, state.seq, state.xseq, state.snap_seq, local.book
            )
        elif state is None and xseq == 1:
            stream = PairStream(pair, new_epoch(self.clock_ns()), partition=part.number)
            stream.full_next = True
        else:
            part.cold = True
            return None
        self.ownership.add_stream(stream)
        return stream

    def _invalid(self, msg: Message, exc: InvalidEventError) -> None:
        kind = exc.kind
        self.counters.count_invalid(kind)
        self.throttle.error(f"invalid:{kind}", "skipping invalid event at %s[%d]@%d (%s): %s",
                            msg.topic(), msg.partition(), msg.offset(), kind, exc)  # fmt: skip
        if self.dead_letters is not None:
            self.dead_letters.send(msg, kind, str(exc))
            self.counters.dead_lettered += 1

    def _kafka_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            return
        self.counters.kafka_errors += 1
        self.last_kafka_error = err.str()
        self.throttle.warning("kafka", "kafka: %s (%d errors so far)", err.str(), self.counters.kafka_errors)
