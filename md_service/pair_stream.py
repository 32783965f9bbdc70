"""One pair's stream inside md_service: book, open window, position. Pure: no I/O.

Events are applied at once (the book is always current); closing the window turns the
net change into a delta with the next seq. Exchange sequence numbers (``xseq``) make
redelivered events recognisable: anything at or below the last applied one is skipped,
and told apart from a *late* event (one the exchange skipped earlier and sent after a
newer one), which is skipped too, since applying it out of order would change the book.

The stream also remembers what Redis holds for it (``stored``: the position last written),
so every write can say what it expects to replace; Redis refuses a write whose expectation
is wrong (see :mod:`md_service.window_script`).

A seq is only used once Redis confirmed it: closing a window takes the next seq, but a
write the service gives up on (stopping, or past a deadline, in a Redis outage) is undone
with :meth:`PairStream.abort_close`, so the next window takes that seq again, with the
undone window's changes included. Otherwise the next write would publish ``S+2`` after
``S`` (a hole) or store ``S+1`` without its history entry.
"""

from __future__ import annotations

import secrets
import zlib
from dataclasses import dataclass
from enum import Enum

from mdcore.book import ASK, BID, OrderBook
from mdcore.checksum import CHECKSUM_DEPTH, checksum_of_wire_levels
from mdcore.coalesce import WindowChanges
from mdcore.codec import encode_delta, encode_snapshot
from mdcore.events import Change
from mdcore.instruments import Instrument, instrument
from mdcore.messages import Delta, Snapshot, StreamPosition
from mdcore.wire_format import WireLevel, wire_format

MAX_MISSING_RANGES = 32  # remembered exchange gaps per pair, to tell a late event from a duplicate


class EventOutcome(Enum):
    APPLIED = "applied"
    APPLIED_AFTER_GAP = "applied_after_gap"  # the exchange skipped xseqs: applied, counted
    DUPLICATE = "duplicate"  # xseq already applied (a redelivery): skipped
    LATE = "late"  # an xseq skipped earlier arrived after newer ones (reordered): skipped, counted


def new_epoch(now_ns: int) -> str:
    """A fresh epoch: creation time in ms (so epochs sort by age) plus randomness."""
    return f"{now_ns // 1_000_000}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class WindowOutput:
    """What one closed window writes for one pair.

    ``delta`` empty means a state-only write: the xseq advanced (or a check is due) but the
    book did not change, so nothing is published and the seq stays. ``expect`` is the
    position Redis must hold for the write to go ahead (None: no state at all).
    """

    pair: str
    partition: int
    epoch: str
    seq: int
    xseq: int
    delta: bytes
    snapshot: bytes | None  # a full snapshot at ``seq`` when one is due, else None
    expect: StreamPosition | None


class PairStream:
    """Book + open window + ``(epoch, seq)`` + last ``xseq`` of one pair."""

    __slots__ = (
        "_undo",
        "book",
        "epoch",
        "full_next",
        "instrument",
        "key",
        "missing",
        "pair",
        "partition",
        "phase",
        "seq",
        "snap_due",
        "snap_seq",
        "stored",
        "stored_xseq",
        "unsure",
        "window",
        "wire",
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
        partition: int = 0,
        stored: StreamPosition | None = None,
    ) -> None:
        self.pair = pair
        self.key = pair.encode()  # the Kafka key its events must carry
        self.partition = partition
        self.instrument: Instrument = instrument(pair)
        self.book = book if book is not None else OrderBook()
        self.epoch = epoch
        self.seq = seq
        self.xseq = xseq
        self.snap_seq = snap_seq  # None: no snapshot stored yet, write one with the next window
        self.stored = stored  # what Redis holds (per the last successful write or load)
        self.stored_xseq = xseq
        self.full_next = False  # the next window publishes the whole book (a new epoch's start)
        self.snap_due = False  # a periodic snapshot is due at the stored seq
        self.phase = zlib.crc32(self.key)  # spreads the pairs' snapshots over windows
        self.wire = wire_format(self.instrument)
        self.missing: list[tuple[int, int]] = []  # xseq ranges the exchange skipped
        self.window = WindowChanges()
        # what the last close changed, so an unwritten close can be undone (abort_close)
        self._undo: tuple[WindowChanges, int, int | None, bool, bool] | None = None
        # a position an undone write may have reached Redis with, with other content than ours
        self.unsure: StreamPosition | None = None

    @classmethod
    def restored(
        cls, pair: str, partition: int, epoch: str, seq: int, xseq: int, snap_seq: int, book: OrderBook
    ) -> PairStream:
        """The stream exactly as Redis stores it."""
        return cls(pair, epoch, seq, xseq, book, snap_seq, partition, stored=StreamPosition(epoch, seq))

    # --- events -------------------------------------------------------------------

    def apply(self, xseq: int, xts: int, changes: list[Change]) -> EventOutcome:
        """Apply a validated event unless it was already applied (or comes too late)."""
        last = self.xseq
        if xseq <= last:
            if self.missing and self._fill(xseq):
                return EventOutcome.LATE
            return EventOutcome.DUPLICATE
        window = self.window
        window.apply_changes(self.book, changes)
        window.note_event(xts)
        self.xseq = xseq
        if xseq == last + 1:
            return EventOutcome.APPLIED
        self.missing.append((last + 1, xseq - 1))
        if len(self.missing) > MAX_MISSING_RANGES:
            del self.missing[0]
        return EventOutcome.APPLIED_AFTER_GAP

    def _fill(self, xseq: int) -> bool:
        """True (and forget it) if ``xseq`` is one the exchange skipped earlier."""
        for i, (lo, hi) in enumerate(self.missing):
            if lo <= xseq <= hi:
                parts = [(a, b) for a, b in ((lo, xseq - 1), (xseq + 1, hi)) if a <= b]
                self.missing[i : i + 1] = parts
                return True
        return False

    # --- windows ------------------------------------------------------------------

    def close_window(self, now_ns: int, snapshot_every: int, check: bool = False) -> WindowOutput | None:
        """Close the open window: the next delta, a state-only write, or None.

        A delta goes out if the book changed (the whole book after :meth:`restart_epoch`);
        a state-only write if only the xseq moved or ``check`` asks to confirm the stored
        state. The first delta of a stream carries a snapshot (Redis must never hold a
        stream it cannot rebuild); later snapshots, every ``snapshot_every`` seqs (each pair
        at its own phase, so they do not all fall in one window), are only marked due here
        and written after the window (:meth:`due_snapshot`), off the publishing path.
        """
        window = self.window
        self.window = WindowChanges()
        self._undo = (window, self.seq, self.snap_seq, self.snap_due, self.full_next)
        wire, book = self.wire, self.book
        whole = self.full_next or self.snap_seq is None
        if self.full_next:
            bids, asks = wire.levels(book.iter_side(BID)), wire.levels(book.iter_side(ASK))
        elif not window.is_empty():
            net_bids, net_asks = window.net_levels(book)
            bids, asks = wire.levels(net_bids), wire.levels(net_asks)
        else:
            bids = asks = []
        if not bids and not asks and not self.full_next:
            # Only a stream Redis already holds gets a state-only write: a state without a
            # snapshot would be unreadable.
            if self.stored is not None and (check or self.xseq != self.stored_xseq):
                return WindowOutput(self.pair, self.partition, self.epoch, self.seq, self.xseq, b"", None,
                                    self.stored)  # fmt: skip
            return None
        self.seq += 1
        snapshot = None
        if whole:
            snap = self.snapshot(now_ns, (bids, asks) if self.full_next else None)
            checksum = snap.checksum
            snapshot = encode_snapshot(snap)
            self.snap_seq = self.seq
            self.snap_due = False
            self.full_next = False
        else:
            checksum = wire.checksum(book)
            since = self.seq - (self.snap_seq or 0)
            if since >= snapshot_every or (self.seq + self.phase) % snapshot_every == 0:
                self.snap_due = True
        delta = Delta(
            self.pair, self.epoch, self.seq, now_ns, window.first_xts or now_ns, bids, asks, checksum
        )
        return WindowOutput(self.pair, self.partition, self.epoch, self.seq, self.xseq, encode_delta(delta),
                            snapshot, self.stored)  # fmt: skip

    def due_snapshot(self, now_ns: int) -> bytes | None:
        """The encoded snapshot at the stored seq, if one is due (write it, then :meth:`snapshot_written`).

        Only while the book is exactly the book at that seq, i.e. nothing changed it since the
        window closed: a snapshot labelled ``S`` holding a later book would make every reader
        fail at ``S+1`` (or, deeper than the checksum's 25 levels, go wrong unnoticed).
        """
        if not self.snap_due or self.stored != (self.epoch, self.seq) or not self.window.is_empty():
            return None
        return encode_snapshot(self.snapshot(now_ns))

    def snapshot_written(self, seq: int) -> None:
        self.snap_seq = seq
        self.snap_due = self.seq != seq

    def confirm(self, out: WindowOutput) -> None:
        """Redis accepted ``out``: it now holds this position."""
        self.stored = StreamPosition(out.epoch, out.seq)
        self.stored_xseq = out.xseq
        self.unsure = None
        self._undo = None

    def abort_close(self, maybe_landed: bool) -> None:
        """The last :meth:`close_window`'s output was not written: take it back.

        Its seq is free again and its changes rejoin the open window, so the next window is
        ``S+1`` again and carries them. ``maybe_landed``: a write was attempted and its
        answer never came, so Redis may hold that position with the undone content; a
        later refusal at exactly that position then means "continue in a new epoch", not
        "our write landed" (see :attr:`unsure`).
        """
        if self._undo is None:
            return
        window, seq, snap_seq, snap_due, full_next = self._undo
        self._undo = None
        if maybe_landed and self.seq != seq:
            self.unsure = StreamPosition(self.epoch, self.seq)
        window.absorb(self.window)
        self.window = window
        self.seq, self.snap_seq, self.snap_due, self.full_next = seq, snap_seq, snap_due, full_next

    def continue_from(self, epoch: str, seq: int, xseq: int, snap_seq: int, stored: OrderBook) -> None:
        """Take over the stream Redis holds at ``(epoch, seq)``, continuing it from this stream's book.

        For a warm takeover (docs/md_service.md, "Hot standby"): this book has applied every
        event the stored one has (``xseq`` at least the stored one) and maybe more. The next
        window's delta is ``seq + 1`` and takes a reader from the *stored* book to this one,
        whatever windows this stream cut while it followed: the window is reopened with the
        stored book's quantity as the opening quantity of every level the two books disagree on.
        """
        window = WindowChanges()
        for side in (BID, ASK):
            mine, theirs = self.book.side(side), stored.side(side)
            for price in set(mine) | set(theirs):
                qty = mine.get(price, 0)
                if theirs.get(price, 0) != qty:
                    window.apply(stored, side, price, qty)  # ``stored`` becomes this book, level by level
        self.book = stored
        self.window = window
        self.epoch, self.seq, self.snap_seq = epoch, seq, snap_seq
        self.stored, self.stored_xseq = StreamPosition(epoch, seq), xseq
        self.full_next = self.snap_due = False
        self.unsure = None
        self._undo = None

    def discard_window(self) -> None:
        """Forget the open window (a follower publishes nothing; only its book matters)."""
        if not self.window.is_empty():
            self.window = WindowChanges()
        self._undo = None

    def restart_epoch(self, epoch: str, replacing: StreamPosition | None) -> None:
        """Continue the (correct) book in a new stream; its first delta carries the whole book.

        ``replacing`` is what Redis holds now (None: nothing), which the next write replaces.
        """
        self.epoch = epoch
        self.seq = 0
        self.snap_seq = None
        self.snap_due = False
        self.stored = replacing
        self.full_next = True
        self.window = WindowChanges()
        self.unsure = None
        self._undo = None

    def snapshot(
        self, now_ns: int, levels: tuple[list[WireLevel], list[WireLevel]] | None = None
    ) -> Snapshot:
        """The whole book at the current seq (``levels``: the whole book, already formatted)."""
        wire, book = self.wire, self.book
        bids, asks = levels or (wire.levels(book.iter_side(BID)), wire.levels(book.iter_side(ASK)))
        checksum = checksum_of_wire_levels(bids[:CHECKSUM_DEPTH], asks[:CHECKSUM_DEPTH])
        return Snapshot(self.pair, self.epoch, self.seq, now_ns, bids, asks, checksum)
