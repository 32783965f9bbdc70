"""BookSet, the client's sans-I/O core: the per-pair rules driven with plain calls, no sockets."""

from __future__ import annotations

import dataclasses

import pytest

from clients import BookUpdate, ClientStats
from clients.book_set import BookSet
from clients.view import BookView
from mdcore.instruments import default_pairs
from mdcore.messages import Resync, StreamPosition
from tests.unit.clients.scripted_server import SourceBook

SECOND = 1_000_000_000


def make(pairs=("BTC-USD",), **kwargs) -> tuple[BookSet, list[BookUpdate]]:
    updates: list[BookUpdate] = []
    books = BookSet(ClientStats(), updates.append, **kwargs)
    books.add(pairs, now_ns=0)
    return books, updates


def levels(books: BookSet, pair: str):
    top = BookView(books.state(pair)).top(None)
    return [tuple(x) for x in top.bids], [tuple(x) for x in top.asks]


def test_snapshot_then_deltas() -> None:
    books, updates = make()
    src = SourceBook.with_depth(levels=4)
    books.on_snapshot(src.snapshot(), 10)
    books.on_delta(src.bump(), 20)
    books.on_delta(src.delta(asks=[(src.levels()[1][0][0], "0")]), 30)
    assert levels(books, "BTC-USD") == src.levels()
    assert [(u.kind, u.seq, u.received_ns) for u in updates] == [
        ("snapshot", src.seq - 2, 10),
        ("delta", src.seq - 1, 20),
        ("delta", src.seq, 30),
    ]
    assert books.take_ops() == []
    assert books.stats.deltas == 2 and books.stats.snapshots == 1


def test_deltas_before_the_first_snapshot_wait_without_a_resync() -> None:
    books, updates = make()
    src = SourceBook.with_depth(levels=4)
    books.on_delta(src.bump(), 1)  # the gateway's snapshot is on its way after "subscribe"
    assert books.take_ops() == [] and updates == []
    assert books.stats.ignored_deltas == 1
    books.on_delta(src.bump(), 6 * SECOND)  # ... but not forever
    assert [type(op) for op in books.take_ops()] == [Resync]


def test_gap_asks_once_and_waits_for_the_snapshot() -> None:
    books, _ = make()
    src = SourceBook.with_depth(levels=4)
    books.on_snapshot(src.snapshot(), 0)
    src.bump()
    books.on_delta(src.bump(), 1)
    books.on_delta(src.bump(), 2)
    books.on_delta(src.bump(), 3)
    ops = books.take_ops()
    assert len(ops) == 1 and isinstance(ops[0], Resync) and ops[0].pair == "BTC-USD"
    assert books.stats.gaps == 1 and books.stats.ignored_deltas == 2
    assert not books.state("BTC-USD").synced
    books.on_snapshot(src.snapshot(), 4)
    assert books.all_synced()
    assert levels(books, "BTC-USD") == src.levels()


def test_checksum_mismatch_leaves_the_book_untrusted() -> None:
    books, _ = make()
    src = SourceBook.with_depth(levels=4)
    books.on_snapshot(src.snapshot(), 0)
    delta = src.bump()
    books.on_delta(dataclasses.replace(delta, checksum=delta.checksum ^ 1), 1)
    assert books.stats.checksum_failures == 1
    assert [op.pair for op in books.take_ops()] == ["BTC-USD"]
    view = BookView(books.state("BTC-USD"))
    assert not view.synced and view.top() == ([], []) and view.as_snapshot() is None


def test_without_verification_a_bad_checksum_goes_unnoticed() -> None:
    books, _ = make(verify_checksums=False)
    src = SourceBook.with_depth(levels=4)
    books.on_snapshot(src.snapshot(), 0)
    delta = src.bump()
    books.on_delta(dataclasses.replace(delta, checksum=delta.checksum ^ 1), 1)
    assert books.stats.checksum_failures == 0 and books.all_synced()


def test_subscribe_ops_carry_since_for_synced_books_only() -> None:
    books, _ = make(("BTC-USD", "ETH-USD"))
    src = SourceBook.with_depth(levels=4, epoch="e7", seq=12)
    books.on_snapshot(src.snapshot(), 0)
    (op,) = books.subscribe_ops(now_ns=5)
    assert op.pairs == ("BTC-USD", "ETH-USD")
    assert op.since == {"BTC-USD": StreamPosition("e7", 12)}
    assert books.state("ETH-USD").waiting_since_ns == 5
    (only,) = books.subscribe_ops(now_ns=5, pairs=["ETH-USD", "XRP-USD"])
    assert only.pairs == ("ETH-USD",) and only.since == {}


def test_subscribe_ops_respect_the_per_request_limit() -> None:
    pairs = default_pairs(2500)
    books, _ = make(pairs)
    ops = books.subscribe_ops(now_ns=0)
    assert [len(op.pairs) for op in ops] == [1024, 1024, 452]
    assert [p for op in ops for p in op.pairs] == pairs
    assert len({op.id for op in ops}) == 3


def test_add_and_remove() -> None:
    books, _ = make()
    assert books.add(["ETH-USD", "BTC-USD", "ETH-USD"], 0) == ["ETH-USD"]
    state = books.state("BTC-USD")
    assert books.remove(["BTC-USD", "SOL-USD"]) == ["BTC-USD"]
    assert books.pairs == ("ETH-USD",) and not state.synced
    with pytest.raises(KeyError, match="BTC-USD"):
        books.state("BTC-USD")


def test_messages_for_pairs_not_followed_are_counted() -> None:
    books, updates = make()
    src = SourceBook.with_depth("ETH-USD", levels=2)
    books.on_snapshot(src.snapshot(), 0)
    books.on_delta(src.bump(), 0)
    assert books.stats.unexpected == 2 and updates == [] and books.take_ops() == []


def test_connection_lost_voids_queued_ops() -> None:
    books, _ = make()
    src = SourceBook.with_depth(levels=2)
    books.on_snapshot(src.snapshot(), 0)
    src.bump()
    books.on_delta(src.bump(), 1)
    books.connection_lost()
    assert books.take_ops() == []
    (op,) = books.subscribe_ops(now_ns=2)
    assert op.since == {}  # the unsynced pair gets a snapshot on the new connection


def test_request_overdue_asks_again_only_after_the_retry_period() -> None:
    books, _ = make(("BTC-USD", "ETH-USD"), resync_retry_ns=5 * SECOND)
    src = SourceBook.with_depth(levels=2)
    books.on_snapshot(src.snapshot(), 0)  # BTC synced; ETH still waits since t=0
    books.request_overdue(4 * SECOND)
    assert books.take_ops() == []
    books.request_overdue(5 * SECOND)
    assert [op.pair for op in books.take_ops()] == ["ETH-USD"]
    books.request_overdue(6 * SECOND)
    assert books.take_ops() == []  # the clock restarted at the new request


def test_a_resync_waiting_to_be_sent_is_not_queued_twice() -> None:
    books, _ = make(("BTC-USD", "ETH-USD"), resync_retry_ns=5 * SECOND)
    books.request_overdue(5 * SECOND)
    books.request_overdue(10 * SECOND)  # still unsent (the sender is pacing): no second request
    books.on_delta(SourceBook.with_depth("ETH-USD", levels=2).bump(), 11 * SECOND)
    assert [op.pair for op in books.take_ops()] == ["BTC-USD", "ETH-USD"]
    assert books.stats.resyncs == 2


def test_the_retry_period_counts_from_the_sending() -> None:
    books, _ = make(resync_retry_ns=5 * SECOND)
    books.request_overdue(5 * SECOND)
    assert isinstance(books.next_op(now_ns=9 * SECOND), Resync)  # paced: it left 4 s after queued
    books.request_overdue(13 * SECOND)
    assert not books.has_ops  # 4 s after it left: not overdue yet
    books.request_overdue(14 * SECOND)
    assert [op.pair for op in books.take_ops()] == ["BTC-USD"]


def test_unsubscribing_drops_a_queued_resync() -> None:
    books, _ = make(("BTC-USD", "ETH-USD"))
    books.request_overdue(5 * SECOND)
    books.remove(["BTC-USD"])
    assert [op.pair for op in books.take_ops()] == ["ETH-USD"]
