"""BookView: a live, read-only view in canonical strings that reads as empty while not synced.

Driven through a BookSet with plain calls; the last test reads the view BookClient hands out.
"""

from __future__ import annotations

import dataclasses

import pytest

from clients import ClientStats
from clients.book_set import BookSet
from clients.view import BookLevels, BookView, PriceLevel
from mdcore.messages import ErrorMessage, StreamPosition
from tests.unit.clients.scripted_server import SourceBook, open_synced


def synced_view(src: SourceBook) -> tuple[BookSet, BookView]:
    books = BookSet(ClientStats(), lambda update: None)
    books.add([src.pair], 0)
    books.on_snapshot(src.snapshot(), 0)
    return books, BookView(books.state(src.pair))


def small() -> SourceBook:
    return SourceBook(
        "BTC-USD",
        epoch="e3",
        seq=40,
        bids=[("99.50", "1.00000"), ("99.00", "2.50000"), ("98.00", "1.00000")],
        asks=[("100.25", "0.10000"), ("101.00", "3.00000")],
    )


def test_levels_are_best_first_canonical_strings() -> None:
    _, view = synced_view(small())
    assert view.top(2) == BookLevels(
        [PriceLevel("99.50", "1.00000"), PriceLevel("99.00", "2.50000")],
        [PriceLevel("100.25", "0.10000"), PriceLevel("101.00", "3.00000")],
    )
    assert len(view.top(None).bids) == 3 and len(view.top().bids) == 3
    assert view.best_bid() == ("99.50", "1.00000") and view.best_ask().qty == "0.10000"
    assert view.spread() == "0.75"
    assert (view.pair, view.epoch, view.seq, view.position) == ("BTC-USD", "e3", 40, StreamPosition("e3", 40))


def test_the_view_is_live_not_a_copy() -> None:
    src = small()
    books, view = synced_view(src)
    books.on_delta(src.delta(bids=[("99.75", "4.00000")], asks=[("100.25", "0")]), 1)
    assert view.seq == 41
    assert view.best_bid() == ("99.75", "4.00000")
    assert view.best_ask() == ("101.00", "3.00000")
    assert view.spread() == "1.25"


def test_an_unsynced_book_reads_as_empty() -> None:
    src = small()
    books, view = synced_view(src)
    delta = src.bump()
    books.on_delta(dataclasses.replace(delta, checksum=delta.checksum ^ 1), 1)  # mismatch: resync
    assert not view.synced
    assert view.top() == ([], []) and view.best_bid() is None and view.best_ask() is None
    assert view.spread() is None and view.as_snapshot() is None
    assert view.epoch is None and view.position is None
    assert repr(view) == "BookView(BTC-USD, unsynced, bid=None, ask=None)"


def test_one_empty_side_has_no_spread() -> None:
    _, view = synced_view(SourceBook("BTC-USD", bids=[("99.50", "1.00000")]))
    assert view.synced and view.best_ask() is None and view.spread() is None


def test_as_snapshot_is_the_whole_book_at_its_position() -> None:
    src = small()
    _, view = synced_view(src)
    snap = view.as_snapshot()
    expected = src.snapshot()
    assert (snap.pair, snap.epoch, snap.seq, snap.checksum) == (
        expected.pair,
        expected.epoch,
        expected.seq,
        expected.checksum,
    )
    assert [tuple(level) for level in snap.bids] == [tuple(level) for level in expected.bids]


def test_a_refused_pair_says_why() -> None:
    books = BookSet(ClientStats(), lambda update: None)
    books.add(["ETH-USD"], 0)
    books.begin_connection(0)
    (op,) = books.take_ops()
    books.on_error(ErrorMessage("too_many_pairs", "limit 100", op.id), 0)
    view = BookView(books.state("ETH-USD"))
    assert not view.synced and view.refusal is not None and view.refusal.code == "too_many_pairs"
    assert repr(view) == "BookView(ETH-USD, refused too_many_pairs, bid=None, ask=None)"


def test_repr_of_a_synced_view() -> None:
    _, view = synced_view(small())
    assert repr(view) == (
        "BookView(BTC-USD, seq=40, bid=PriceLevel(price='99.50', qty='1.00000'), "
        "ask=PriceLevel(price='100.25', qty='0.10000'))"
    )


def test_a_view_cannot_change_the_book() -> None:
    _, view = synced_view(small())
    with pytest.raises(AttributeError):
        view.seq = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        view.extra = 1  # type: ignore[attr-defined]


# --- through BookClient --------------------------------
async def test_book_view_accessors(server) -> None:
    src = SourceBook(
        "BTC-USD",
        bids=[("99.50", "1.00000"), ("99.00", "2.50000")],
        asks=[("100.25", "0.10000"), ("101.00", "3.00000")],
    )
    client, _ = await open_synced(server, [src])
    async with client:
        view = client.book("BTC-USD")
        assert view.synced and view.seq == src.seq and view.epoch == src.epoch
        assert view.best_bid() == ("99.50", "1.00000")
        assert view.best_ask().price == "100.25"
        assert view.spread() == "0.75"
        assert view.top(1) == ([("99.50", "1.00000")], [("100.25", "0.10000")])
        assert view.as_snapshot().checksum == src.snapshot().checksum
        with pytest.raises(KeyError, match="ETH-USD"):
            client.book("ETH-USD")
