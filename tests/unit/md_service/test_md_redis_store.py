"""md_service.redis_store's pure part: :func:`restore`, a READ_BOOK reply as (state, book).

Everything else in the module is a Redis call; ``tests/integration/test_md_store.py`` drives
every one of them on one server and on a 3-primary cluster (claim, take_over, follow_point,
beat, release, watch, load, write_window, write_snapshots), ``tests/integration/test_md_service_redis.py``
through the real service (load_many, claimed_partitions via its leases), and
``tests/contract/test_book_store_contract.py`` holds its writes to the book-store contract.
"""

from __future__ import annotations

import logging

import pytest

from md_service.redis_store import restore
from mdcore.codec import encode_delta, encode_snapshot
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, Snapshot
from mdcore.redis_layout import DELTA_FIELD, StoredState
from mdcore.wire_format import book_checksum

PAIR = "BTC-USD"
BIDS, ASKS = [["100.00", "1.00000"]], [["101.00", "2.00000"]]


def snapshot_bytes(epoch: str = "e1", seq: int = 4) -> bytes:
    book = LocalBook(PAIR)
    book.load_snapshot(Snapshot(PAIR, epoch, seq, 0, BIDS, ASKS, 0), verify=False)
    return encode_snapshot(
        Snapshot(PAIR, epoch, seq, 0, BIDS, ASKS, book_checksum(book.book, book.instrument))
    )


def state(epoch: str = "e1", seq: int = 4, snap_seq: int = 4) -> list[bytes]:
    return [
        b"epoch",
        epoch.encode(),
        b"seq",
        str(seq).encode(),
        b"xseq",
        b"90",
        b"snap_seq",
        str(snap_seq).encode(),
    ]


def test_nothing_stored_is_nothing_restored() -> None:
    assert restore(PAIR, [[], False, []]) == (None, None)


def test_a_stored_snapshot_restores_the_book_at_the_stored_seq() -> None:
    got_state, local = restore(PAIR, [state(), snapshot_bytes(), []])
    assert got_state == StoredState("e1", 4, 90, 4)
    assert local is not None and (local.epoch, local.seq) == ("e1", 4)


def test_an_unreadable_state_is_logged_and_treated_as_nothing_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, "md_service.redis_store"):
        assert restore(PAIR, [[b"epoch", b"e1", b"seq", b"x"], snapshot_bytes(), []]) == (None, None)
    assert "unreadable stored state" in caplog.text


def test_a_state_whose_stream_does_not_add_up_is_returned_without_a_book(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the state says seq 5, the snapshot is at 4 and no delta follows: a hole
    with caplog.at_level(logging.ERROR, "md_service.redis_store"):
        assert restore(PAIR, [state(seq=5), snapshot_bytes(), []]) == (StoredState("e1", 5, 90, 4), None)
    assert "does not add up" in caplog.text
    # a history entry that does not decode
    broken = [[b"5-0", [DELTA_FIELD, b"not a delta"]]]
    assert restore(PAIR, [state(seq=5), snapshot_bytes(), broken]) == (StoredState("e1", 5, 90, 4), None)
    # a delta whose checksum is not the book's
    wrong = encode_delta(Delta(PAIR, "e1", 5, 5, 5, [["99.00", "1.00000"]], [], 12345))
    assert restore(PAIR, [state(seq=5), snapshot_bytes(), [[b"5-0", [DELTA_FIELD, wrong]]]])[1] is None


def test_a_state_without_a_snapshot_has_no_book() -> None:
    assert restore(PAIR, [state(), False, []]) == (StoredState("e1", 4, 90, 4), None)
