"""mdcore.redis_layout: every key of a partition under one hash tag, the stored state, and
rebuild_book: a stored snapshot plus its history gives the book at the stored seq, verified once.

READ_BOOK_LUA itself runs in Redis: ``tests/integration/test_md_store.py`` reads every book it
writes back through it (``stored_book``), on one server and on a cluster.
"""

from __future__ import annotations

import pytest

import mdcore.local_book as local_book_module
from mdcore.codec import encode_delta, encode_snapshot
from mdcore.errors import IntegrityError
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, Snapshot
from mdcore.partitioning import DEFAULT_PARTITIONS, partition_of
from mdcore.redis_layout import (
    DELTA_FIELD,
    READ_BOOK_LUA,
    RedisLayout,
    StoredState,
    parse_state,
    rebuild_book,
)
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


# --- the layout ------------------------------------------------------------------------


def test_every_key_and_channel_of_a_pair_carries_its_partitions_hash_tag() -> None:
    layout = RedisLayout("bc", 8)
    p = partition_of(PAIR, 8)
    assert layout.partition(PAIR) == p and layout.tag(p) == f"bc:{{p{p}}}"
    assert layout.delta_channel(PAIR) == f"bc:{{p{p}}}:delta:{PAIR}"
    assert layout.book_keys(PAIR) == [
        f"bc:{{p{p}}}:state:{PAIR}",
        f"bc:{{p{p}}}:snap:{PAIR}",
        f"bc:{{p{p}}}:hist:{PAIR}",
    ]
    assert layout.history_key(PAIR) == f"bc:{{p{p}}}:hist:{PAIR}"
    assert (
        layout.pairs_key(p) == f"bc:{{p{p}}}:pairs" and layout.md_key(p, "events") == f"bc:{{p{p}}}:md:events"
    )


def test_the_default_layout_is_the_default_prefix_and_partition_count() -> None:
    assert RedisLayout() == RedisLayout("bookcast", DEFAULT_PARTITIONS)


@pytest.mark.parametrize("prefix", ["a{b", "a}b", "{x}"])
def test_a_prefix_with_braces_is_refused_it_would_pick_the_hash_slot(prefix: str) -> None:
    with pytest.raises(ValueError, match="no braces"):
        RedisLayout(prefix)


def test_a_topic_has_at_least_one_partition() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        RedisLayout("bc", 0)


def test_the_read_script_reads_what_the_layout_names_in_its_order() -> None:
    # KEYS: state, snap, hist (book_keys' order); history from past the snapshot's seq
    assert "HGETALL', KEYS[1]" in READ_BOOK_LUA and "GET', KEYS[2]" in READ_BOOK_LUA
    assert "XRANGE', KEYS[3], '(' .. snap_seq" in READ_BOOK_LUA


# --- the stored state ------------------------------------------------------------------


def test_a_state_hash_decodes_in_any_field_order() -> None:
    flat = [b"snap_seq", b"3", b"xseq", b"77", b"seq", b"9", b"epoch", b"e1", b"extra", b"x"]
    assert parse_state(flat) == StoredState("e1", 9, 77, 3)
    assert parse_state([]) is None  # no state: the pair has no stream


@pytest.mark.parametrize(
    "flat",
    [
        [b"epoch", b"e1", b"seq", b"9", b"xseq", b"77"],  # no snap_seq
        [b"epoch", b"e1", b"seq", b"nine", b"xseq", b"77", b"snap_seq", b"3"],
    ],
)
def test_a_malformed_state_hash_is_an_integrity_error(flat: list[bytes]) -> None:
    with pytest.raises(IntegrityError, match="malformed state hash"):
        parse_state(flat)


def test_no_state_or_no_snapshot_is_no_stream() -> None:
    snap, _deltas, _final = _stream(0)
    assert rebuild_book(PAIR, [[], snap, []]) is None
    state, _snap, _entries = _reply(snap, [], 1)
    assert rebuild_book(PAIR, [state, False, []]) is None  # a state without a snapshot


def test_a_history_that_ends_elsewhere_than_the_state_is_refused() -> None:
    snap, deltas, _final = _stream(3)
    with pytest.raises(IntegrityError, match="history ends at e1/4 but state says e1/5"):
        rebuild_book(PAIR, _reply(snap, deltas, 5))
