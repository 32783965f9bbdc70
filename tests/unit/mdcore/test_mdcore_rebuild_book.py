"""rebuild_book: a stored snapshot plus its history gives the book at the stored seq, verified once."""

from __future__ import annotations

import pytest

import mdcore.local_book as local_book_module
from mdcore.codec import encode_delta, encode_snapshot
from mdcore.errors import IntegrityError
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, Snapshot
from mdcore.redis_layout import DELTA_FIELD, rebuild_book
from mdcore.wire_format import book_checksum

PAIR = "BTC-USD"


def _stream(deltas: int) -> tuple[bytes, list[bytes], int]:
    """A snapshot at seq 1 and ``deltas`` deltas after it, each with the right checksum."""
    book = LocalBook(PAIR)
    snap = Snapshot(PAIR, "e1", 1, 0, [["100.00", "1.00000"]], [["101.00", "1.00000"]], 0)
    book.load_snapshot(snap, verify=False)
    snap = Snapshot(PAIR, "e1", 1, 0, snap.bids, snap.asks, book_checksum(book.book, book.instrument))
    encoded = []
    for seq in range(2, deltas + 2):
        bids = [[f"{99 - seq % 7}.00", f"{seq}.00000"]]
        draft = Delta(PAIR, "e1", seq, seq, seq, bids, [], 0)
        book.apply_delta(draft, verify=False)
        checksum = book_checksum(book.book, book.instrument)
        encoded.append(encode_delta(Delta(PAIR, "e1", seq, seq, seq, bids, [], checksum)))
    return encode_snapshot(snap), encoded, book_checksum(book.book, book.instrument)


def _reply(snap: bytes, deltas: list[bytes], seq: int) -> list[object]:
    state = [b"epoch", b"e1", b"seq", str(seq).encode(), b"xseq", b"0", b"snap_seq", b"1"]
    entries = [[f"{i + 2}-0".encode(), [DELTA_FIELD, raw]] for i, raw in enumerate(deltas)]
    return [state, snap, entries]


def test_the_book_is_checked_once_not_once_per_history_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    snap, deltas, final = _stream(50)
    calls = []
    real = local_book_module.book_checksum

    def counting(book, inst):
        calls.append(1)
        return real(book, inst)

    monkeypatch.setattr(local_book_module, "book_checksum", counting)
    state, local = rebuild_book(PAIR, _reply(snap, deltas, 51))
    assert (state.seq, local.seq, local.checksum) == (51, 51, final)
    assert len(calls) == 2  # the empty book's, when LocalBook is made, and the final check (not 51)


def test_a_history_that_does_not_add_up_is_refused() -> None:
    snap, deltas, _final = _stream(5)
    assert b'"4.00000"' in deltas[2]  # seq 4 sets its own level: a wrong quantity there stays wrong
    corrupt = [*deltas[:2], deltas[2].replace(b'"4.00000"', b'"9.00000"'), *deltas[3:]]
    with pytest.raises(IntegrityError):
        rebuild_book(PAIR, _reply(snap, corrupt, 6))


def test_a_snapshot_without_history_is_still_verified() -> None:
    snap, _deltas, _final = _stream(0)
    bad = snap.replace(b'"checksum":', b'"checksum":1')
    with pytest.raises(IntegrityError):
        rebuild_book(PAIR, _reply(bad, [], 1))
