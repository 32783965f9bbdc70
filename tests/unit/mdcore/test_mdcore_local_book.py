"""local_book: snapshot, then contiguous deltas; stale ignored; gap and mismatch force a resync."""

from __future__ import annotations

import pytest

from mdcore.book import ASK, BID, OrderBook
from mdcore.errors import ChecksumMismatchError, IntegrityError, InvalidNumberError, SequenceGapError
from mdcore.instruments import instrument
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, Snapshot, StreamPosition
from mdcore.wire_format import book_checksum

PAIR = "ETH-USD"
INST = instrument(PAIR)


class Source:
    """A tiny md_service stand-in: the true book and the messages that describe it."""

    def __init__(self, epoch: str = "e1", seq: int = 100) -> None:
        self.book = OrderBook()
        self.epoch, self.seq = epoch, seq
        self.book.replace(
            [
                (INST.parse_price("3000.00"), INST.parse_qty("1")),
                (INST.parse_price("2999.50"), INST.parse_qty("2")),
            ],
            [(INST.parse_price("3000.50"), INST.parse_qty("1.5"))],
        )

    def snapshot(self) -> Snapshot:
        fp, fq = INST.format_price, INST.format_qty
        return Snapshot(
            PAIR, self.epoch, self.seq, 1000,
            [[fp(p), fq(q)] for p, q in self.book.top(BID)], [[fp(p), fq(q)] for p, q in self.book.top(ASK)],
            book_checksum(self.book, INST),
        )  # fmt: skip

    def delta(self, bids=(), asks=()) -> Delta:
        for price, qty in bids:
            self.book.set_level(BID, INST.parse_price(price), INST.parse_qty(qty))
        for price, qty in asks:
            self.book.set_level(ASK, INST.parse_price(price), INST.parse_qty(qty))
        self.seq += 1
        return Delta(
            PAIR, self.epoch, self.seq, 2000 + self.seq, 1500,
            [list(level) for level in bids], [list(level) for level in asks], book_checksum(self.book, INST),
        )  # fmt: skip


def synced_pair() -> tuple[Source, LocalBook]:
    source = Source()
    local = LocalBook(PAIR)
    local.load_snapshot(source.snapshot())
    return source, local


def test_a_fresh_book_is_not_synced() -> None:
    local = LocalBook(PAIR)
    assert not local.synced
    assert local.position is None
    assert local.book == OrderBook()
    assert local.instrument is INST


def test_snapshot_then_contiguous_deltas() -> None:
    source, local = synced_pair()
    assert local.synced
    assert local.position == StreamPosition("e1", 100)
    assert local.book == source.book
    changes = [
        {"bids": [("3000.10", "0.5000")]},
        {"bids": [("3000.00", "0")], "asks": [("3000.50", "3.0000"), ("3001.00", "1.0000")]},
        {"asks": [("3000.50", "0")]},
    ]
    for change in changes:
        delta = source.delta(**change)
        assert local.apply_delta(delta) is True
        assert local.book == source.book
        assert local.checksum == delta.checksum
    assert local.position == StreamPosition("e1", 103)
    assert local.ts == delta.ts
    assert local.wire_levels(BID) == [("3000.10", "0.5000"), ("2999.50", "2.0000")]
    assert local.wire_levels(ASK, 1) == [("3001.00", "1.0000")]


def test_stale_deltas_are_ignored() -> None:
    source, local = synced_pair()
    first = source.delta(bids=[("3000.10", "0.5000")])
    local.apply_delta(first)
    before = local.book.copy()
    # The same seq again (a duplicate), and an older one with different content.
    assert local.apply_delta(first) is False
    old = Delta(PAIR, "e1", 100, 0, 0, [["1.00", "1.0000"]], [], 0)
    assert local.apply_delta(old) is False
    assert local.book == before
    assert local.position == StreamPosition("e1", 101)


def test_gap_raises_and_leaves_the_book_untouched() -> None:
    source, local = synced_pair()
    source.delta(bids=[("3000.10", "0.5000")])  # seq 101, never delivered
    skipped_to = source.delta(bids=[("3000.20", "0.5000")])  # seq 102
    before = local.book.copy()
    with pytest.raises(SequenceGapError) as info:
        local.apply_delta(skipped_to)
    error = info.value
    assert (error.pair, error.expected_epoch, error.expected_seq, error.epoch, error.seq) == (
        PAIR,
        "e1",
        101,
        "e1",
        102,
    )
    assert "sequence gap" in str(error)
    assert isinstance(error, IntegrityError)
    assert local.book == before
    assert local.position == StreamPosition("e1", 100)


def test_new_epoch_is_a_gap() -> None:
    _, local = synced_pair()
    other = Source(epoch="e2", seq=100)
    with pytest.raises(SequenceGapError, match="epoch changed"):
        local.apply_delta(other.delta(bids=[("3000.10", "0.5000")]))
    assert local.position == StreamPosition("e1", 100)
    # A snapshot of the new epoch resyncs.
    local.load_snapshot(other.snapshot())
    assert local.position == StreamPosition("e2", 101)
    assert local.book == other.book


def test_delta_before_any_snapshot_is_a_gap() -> None:
    source = Source()
    local = LocalBook(PAIR)
    with pytest.raises(SequenceGapError):
        local.apply_delta(source.delta(bids=[("3000.10", "0.5000")]))
    assert local.book == OrderBook()


def test_checksum_mismatch_raises_and_unsyncs() -> None:
    source, local = synced_pair()
    good = source.delta(bids=[("3000.10", "0.5000")])
    bad = Delta(good.pair, good.epoch, good.seq, good.ts, good.xts, good.bids, good.asks, good.checksum ^ 1)
    with pytest.raises(ChecksumMismatchError) as info:
        local.apply_delta(bad)
    assert info.value.seq == good.seq
    assert info.value.expected == good.checksum ^ 1
    assert info.value.computed == good.checksum
    assert not local.synced
    assert local.position is None
    # Nothing more applies until a snapshot arrives.
    with pytest.raises(SequenceGapError):
        local.apply_delta(source.delta(asks=[("3002.00", "1.0000")]))
    local.load_snapshot(source.snapshot())
    assert local.synced and local.book == source.book


def test_snapshot_checksum_mismatch_raises_and_unsyncs() -> None:
    source = Source()
    snap = source.snapshot()
    bad = Snapshot(snap.pair, snap.epoch, snap.seq, snap.ts, snap.bids, snap.asks, snap.checksum + 1)
    local = LocalBook(PAIR)
    with pytest.raises(ChecksumMismatchError):
        local.load_snapshot(bad)
    assert not local.synced


def test_verify_false_skips_the_checksum() -> None:
    source, local = synced_pair()
    good = source.delta(bids=[("3000.10", "0.5000")])
    unchecked = Delta(good.pair, good.epoch, good.seq, good.ts, good.xts, good.bids, good.asks, 0)
    assert local.apply_delta(unchecked, verify=False) is True
    assert local.synced and local.book == source.book


def test_apply_next_applies_a_delta_already_classified_next() -> None:
    source, local = synced_pair()
    delta = source.delta(bids=[("3000.10", "0.5000")], asks=[("3000.50", "0")])
    local.apply_next(delta)
    assert local.book == source.book and local.checksum == delta.checksum
    assert local.position == StreamPosition("e1", 101) and local.ts == delta.ts
    good = source.delta(asks=[("3001.00", "1.0000")])
    bad = Delta(good.pair, good.epoch, good.seq, good.ts, good.xts, good.bids, good.asks, good.checksum ^ 1)
    local.apply_next(bad, verify=False)  # the replica's path: checked when a snapshot is built
    assert local.book == source.book
    with pytest.raises(ChecksumMismatchError):
        local.verify()
    assert not local.synced


def test_malformed_delta_leaves_book_and_position() -> None:
    source, local = synced_pair()
    before = local.book.copy()
    bad = Delta(PAIR, "e1", 101, 0, 0, [["3000.10", "1.0000"]], [["3000.50", "lots"]], 0)
    with pytest.raises(InvalidNumberError):
        local.apply_delta(bad)
    assert local.book == before
    assert local.position == StreamPosition("e1", 100)
    assert local.apply_delta(source.delta(bids=[("3000.10", "0.5000")])) is True


def test_snapshot_replaces_everything() -> None:
    source, local = synced_pair()
    local.apply_delta(source.delta(bids=[("1.00", "1.0000")]))
    fresh = Source(seq=500)
    local.load_snapshot(fresh.snapshot())
    assert local.book == fresh.book
    assert local.book.qty(BID, INST.parse_price("1.00")) == 0
    assert local.position == StreamPosition("e1", 500)


def test_to_snapshot_round_trips() -> None:
    source, local = synced_pair()
    local.apply_delta(source.delta(bids=[("3000.10", "0.5000")], asks=[("3001.00", "1.0000")]))
    snap = local.to_snapshot()
    assert (snap.pair, snap.epoch, snap.seq, snap.checksum) == (
        PAIR,
        "e1",
        101,
        book_checksum(source.book, INST),
    )
    copy = LocalBook(PAIR)
    copy.load_snapshot(snap)
    assert copy.book == local.book
    assert copy.position == local.position
    assert copy.to_snapshot() == snap


def test_to_snapshot_with_depth() -> None:
    _, local = synced_pair()
    snap = local.to_snapshot(depth=1)
    assert [list(level) for level in snap.bids] == [["3000.00", "1.0000"]]
    assert len(snap.asks) == 1


def test_to_snapshot_needs_a_loaded_book() -> None:
    with pytest.raises(RuntimeError, match=PAIR):
        LocalBook(PAIR).to_snapshot()
