"""A book rebuilt from snapshots and deltas, with the sequence and checksum rules enforced.

The gateway's per-pair replica and every client keep one of these. The only ways in are
:meth:`LocalBook.load_snapshot` and :meth:`LocalBook.apply_delta` (or
:meth:`LocalBook.apply_next` for a caller that has classified the delta already); all
parse levels through the instrument, so a book that passed its checks is the source book.
"""

from __future__ import annotations

from mdcore.book import ASK, BID, OrderBook
from mdcore.errors import ChecksumMismatchError, SequenceGapError
from mdcore.instruments import Instrument, instrument
from mdcore.messages import Delta, Snapshot, StreamPosition, WireLevels
from mdcore.sequencing import Verdict, classify
from mdcore.wire_format import book_checksum, wire_format


class LocalBook:
    """One pair's book at a known stream position ``(epoch, seq)``."""

    __slots__ = ("_format", "book", "checksum", "epoch", "instrument", "pair", "seq", "ts")

    def __init__(self, pair: str, inst: Instrument | None = None) -> None:
        self.pair = pair
        self.instrument = inst or instrument(pair)
        self._format = wire_format(self.instrument)  # snapshots format every level: the fast one
        self.book = OrderBook()
        self.epoch: str | None = None
        self.seq = 0
        self.ts = 0
        self.checksum = book_checksum(self.book, self.instrument)

    @property
    def synced(self) -> bool:
        """False until the first snapshot: nothing may be applied before it."""
        return self.epoch is not None

    @property
    def position(self) -> StreamPosition | None:
        return StreamPosition(self.epoch, self.seq) if self.epoch is not None else None

    def _parse(self, levels: WireLevels) -> list[tuple[int, int]]:
        parse_price, parse_qty = self.instrument.parse_price, self.instrument.parse_qty
        return [(parse_price(p), parse_qty(q)) for p, q in levels]

    def load_snapshot(self, snap: Snapshot, verify: bool = True) -> None:
        """Replace the book with ``snap`` (clear, then adds) and move to its position."""
        self.book.replace(self._parse(snap.bids), self._parse(snap.asks))
        self.epoch, self.seq, self.ts = snap.epoch, snap.seq, snap.ts
        self.checksum = snap.checksum
        if verify:
            self._verify(snap.seq, snap.checksum)

    def apply_delta(self, delta: Delta, verify: bool = True) -> bool:
        """Apply the next delta. Returns False for an old one (ignored).

        Raises :class:`SequenceGapError` (book untouched) on a jump or a new epoch, and
        :class:`ChecksumMismatchError` (book now untrusted) if the result does not verify;
        after either the caller must load a fresh snapshot.
        """
        verdict = classify(self.epoch, self.seq, delta.epoch, delta.seq)
        if verdict is Verdict.STALE:
            return False
        if verdict is Verdict.GAP:
            raise SequenceGapError(self.pair, str(self.epoch), self.seq + 1, delta.epoch, delta.seq)
        self.apply_next(delta, verify)
        return True

    def apply_next(self, delta: Delta, verify: bool = True) -> None:
        """Apply a delta the caller has already classified :attr:`Verdict.NEXT` against this book.

        Why: the gateway's replica classifies every delta to decide what to do with it;
        classifying again here would double the rule's cost on its hot path. Anything not
        known to be NEXT goes through :meth:`apply_delta`. Raises
        :class:`ChecksumMismatchError` (book now untrusted) if the result does not verify.
        """
        bids, asks = self._parse(delta.bids), self._parse(delta.asks)
        book = self.book
        for price, qty in bids:
            book.set_level(BID, price, qty)
        for price, qty in asks:
            book.set_level(ASK, price, qty)
        self.seq, self.ts = delta.seq, delta.ts
        self.checksum = delta.checksum
        if verify:
            self._verify(delta.seq, delta.checksum)

    def verify(self) -> None:
        """Check the book against the checksum of its position (after deltas applied unverified)."""
        self._verify(self.seq, self.checksum)

    def _verify(self, seq: int, expected: int) -> None:
        computed = book_checksum(self.book, self.instrument)
        if computed != expected:
            self.epoch = None  # untrusted until the next snapshot
            raise ChecksumMismatchError(self.pair, seq, expected, computed)

    def wire_levels(self, side: str, depth: int | None = None) -> list[tuple[str, str]]:
        return self._format.levels(self.book.top(side, depth))

    def to_snapshot(self, depth: int | None = None) -> Snapshot:
        """The book as a snapshot message at its current position (requires ``synced``)."""
        if self.epoch is None:
            raise RuntimeError(f"{self.pair}: no snapshot loaded yet")
        return Snapshot(
            self.pair, self.epoch, self.seq, self.ts,
            self.wire_levels(BID, depth), self.wire_levels(ASK, depth), self.checksum,
        )  # fmt: skip
