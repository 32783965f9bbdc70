"""The exchange's own books, rebuilt straight from its events in Kafka: the truth to compare with.

Independent of md_service: every event of the topic is applied in partition order, by its
``xseq``. A restarted feed starts again at xseq 1 with the same seed, so its first events
repeat ones already in the topic; with ``allow_replays`` such a repeat is checked to carry
the same changes as the original (the exchange must not contradict itself) and skipped, as
md_service skips it. Anything else out of order is a gap in the exchange's own stream.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from mdcore.book import ASK, BID, OrderBook
from mdcore.events import ExchangeEvent, decode_event
from mdcore.instruments import instrument

READ_TIMEOUT_S = 60.0
IDLE_S = 1.5  # with the feed frozen, the topic has ended once nothing came for this long

WireSide = list[tuple[str, str]]


class SourceGapError(AssertionError):
    """The exchange's stream skipped an xseq, or repeated one with other changes."""


@dataclass
class SourceBook:
    """A pair's book rebuilt straight from the exchange events in Kafka: the truth."""

    book: OrderBook
    last_xseq: int
    events: int
    replays: int = 0  # events repeated by a restarted feed (same changes), skipped


@dataclass
class SourceBuilder:
    """Applies events one by one; pure, so a test can feed it without Kafka."""

    allow_replays: bool = False
    books: dict[str, SourceBook] = field(default_factory=dict)
    messages: int = 0
    positions: dict[int, int] = field(default_factory=dict)  # per partition: the offset after the last read
    _digests: dict[str, list[int]] = field(default_factory=dict)

    def add(self, event: ExchangeEvent) -> None:
        """Apply ``event`` (the next xseq), skip a faithful replay, raise on anything else."""
        self.messages += 1
        src = self.books.setdefault(event.pair, SourceBook(OrderBook(), 0, 0))
        if event.xseq == src.last_xseq + 1:
            for side, price, qty in event.changes:
                src.book.set_level(side, price, qty)
            src.last_xseq = event.xseq
            src.events += 1
            if self.allow_replays:
                self._digests.setdefault(event.pair, []).append(hash(event.changes))
            return
        if self.allow_replays and 1 <= event.xseq <= src.last_xseq:
            if self._digests[event.pair][event.xseq - 1] != hash(event.changes):
                raise SourceGapError(f"{event.pair}: xseq {event.xseq} repeated with other changes")
            src.replays += 1
            return
        raise SourceGapError(f"{event.pair}: xseq {event.xseq} after {src.last_xseq}")

    @property
    def replays(self) -> int:
        return sum(src.replays for src in self.books.values())


def read_source(
    bootstrap: str,
    topic: str,
    partitions: int,
    *,
    expected_events: int | None = None,
    allow_replays: bool = False,
    timeout: float = READ_TIMEOUT_S,
    idle_s: float = IDLE_S,
) -> SourceBuilder:
    """Read ``topic`` from its start: exactly ``expected_events`` messages, or (None) everything,
    i.e. until every partition is past its high watermark and nothing came for ``idle_s``.

    Not the watermark alone: the embedded broker (Tansu 0.6) sometimes reports a partition's
    high watermark as its last offset instead of the one after it.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    builder = SourceBuilder(allow_replays=allow_replays)
    try:
        ends: dict[int, int] = {}
        if expected_events is None:
            for p in range(partitions):
                ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        last_message = time.monotonic()
        while True:
            now = time.monotonic()
            if expected_events is not None and builder.messages >= expected_events:
                break
            caught_up = all(builder.positions.get(p, 0) >= end for p, end in ends.items())
            if expected_events is None and now - last_message >= idle_s and caught_up:
                break
            if now > deadline:
                raise AssertionError(f"read {builder.messages} events from {topic}, not all of them")
            for msg in consumer.consume(num_messages=5000, timeout=0.2):
                if msg.error():
                    continue
                last_message = time.monotonic()
                builder.positions[msg.partition()] = msg.offset() + 1
                builder.add(decode_event(msg.value()))
    finally:
        consumer.close()
    return builder


def wire_book(book: OrderBook, pair: str) -> tuple[WireSide, WireSide]:
    """Both sides of ``book``, best first, as the canonical strings of the wire."""
    inst = instrument(pair)
    bids = [(inst.format_price(p), inst.format_qty(q)) for p, q in book.iter_side(BID)]
    return bids, [(inst.format_price(p), inst.format_qty(q)) for p, q in book.iter_side(ASK)]
