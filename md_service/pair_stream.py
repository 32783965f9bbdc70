"""One pair's stream inside md_service: book, open window, position. Pure: no I/O.

Events are applied at once (the book is always current); closing the window turns the
net change into a delta with the next seq. Exchange sequence numbers (``xseq``) make
redelivered events recognisable: anything at or below the last applied one is skipped.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import Enum

from mdcore.book import ASK, BID, OrderBook
from mdcore.checksum import book_checksum
from mdcore.coalesce import WindowChanges
from mdcore.codec import encode_delta, encode_snapshot
from mdcore.events import ExchangeEvent
from mdcore.instruments import Instrument, instrument
from mdcore.messages import Delta, Snapshot


class EventOutcome(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # xseq already applied (a redelivery): skipped
    APPLIED_AFTER_GAP = "applied_after_gap"  # the exchange skipped xseqs: applied, counted


def new_epoch(now_ns: int) -> str:
    """A fresh epoch: creation time in ms (so epochs sort by age) plus randomness."""
    return f"{now_ns // 1_000_000}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class WindowOutput:
    """What one closed window publishes for one pair."""

    pair: str
    epoch: str
    seq: int
    xseq: int
    delta: bytes
    snapshot: bytes | None  # a full snapshot at ``seq`` when one is due, else None


class PairStream:
    """Book + open window + ``(epoch, seq)`` + last ``xseq`` of one pair."""

    __slots__ = (
        "book",
        "epoch",
        "instrument",
        "pair",
        "seq",
        "snap_seq",
        "window",
        "xseq",
    )

    def __init__(
        self,
        pair: str,
        epoch: str,
        seq: int = 0,
        xseq: int = 0,
        book: OrderBook | None = None,
        snap_seq: int | None = None,
    ) -> None:
        self.pair = pair
        self.instrument: Instrument = instrument(pair)
        self.book = book if book is not None else OrderBook()
        self.epoch = epoch
        self.seq = seq
        self.xseq = xseq
        self.snap_seq = snap_seq  # None: no snapshot stored yet, write one with the next window
        self.window = WindowChanges()

    def apply(self, event: ExchangeEvent) -> EventOutcome:
        """Apply a validated event unless it was already applied."""
        if event.xseq <= self.xseq:
            return EventOutcome.DUPLICATE
        outcome = EventOutcome.APPLIED if event.xseq == self.xseq + 1 else EventOutcome.APPLIED_AFTER_GAP
        window, book = self.window, self.book
        for side, price, qty in event.changes:
            window.apply(book, side, price, qty)
        window.note_event(event.xts)
        self.xseq = event.xseq
        return outcome

    def close_window(self, now_ns: int, snapshot_every: int) -> WindowOutput | None:
        """Close the open window: the next delta, or None if the book did not change.

        A snapshot is added when none is stored yet or ``snapshot_every`` seqs have passed.
        """
        window = self.window
        self.window = WindowChanges()
        if window.is_empty():
            return None
        bids, asks = window.net_levels(self.book)
        if not bids and not asks:
            return None
        inst = self.instrument
        fp, fq = inst.format_price, inst.format_qty
        self.seq += 1
        checksum = book_checksum(self.book, inst)
        delta = Delta(
            self.pair, self.epoch, self.seq, now_ns, window.first_xts or now_ns,
            [(fp(p), fq(q)) for p, q in bids], [(fp(p), fq(q)) for p, q in asks], checksum,
        )  # fmt: skip
        snapshot = None
        if self.snap_seq is None or self.seq - self.snap_seq >= snapshot_every:
            snapshot = encode_snapshot(self.snapshot(now_ns, checksum))
            self.snap_seq = self.seq
        return WindowOutput(self.pair, self.epoch, self.seq, self.xseq, encode_delta(delta), snapshot)

    def snapshot(self, now_ns: int, checksum: int | None = None) -> Snapshot:
        inst = self.instrument
        fp, fq = inst.format_price, inst.format_qty
        return Snapshot(
            self.pair, self.epoch, self.seq, now_ns,
            [(fp(p), fq(q)) for p, q in self.book.iter_side(BID)],
            [(fp(p), fq(q)) for p, q in self.book.iter_side(ASK)],
            checksum if checksum is not None else book_checksum(self.book, inst),
        )  # fmt: skip
