"""book: best-first sides, set/remove, crossing, replace, copy and equality."""

from __future__ import annotations

import pytest

from mdcore.book import ASK, BID, OrderBook


def make_book(bids=(), asks=()) -> OrderBook:
    book = OrderBook()
    for price, qty in bids:
        book.set_level(BID, price, qty)
    for price, qty in asks:
        book.set_level(ASK, price, qty)
    return book


def test_sides_iterate_best_first() -> None:
    book = make_book(bids=[(100, 1), (102, 2), (101, 3)], asks=[(105, 1), (103, 2), (104, 3)])
    assert book.top(BID) == [(102, 2), (101, 3), (100, 1)]
    assert book.top(ASK) == [(103, 2), (104, 3), (105, 1)]
    assert list(book.iter_side(BID)) == book.top(BID)
    assert list(book.iter_side(ASK)) == book.top(ASK)
    assert book.best_bid() == (102, 2)
    assert book.best_ask() == (103, 2)


def test_top_with_depth() -> None:
    book = make_book(bids=[(p, 1) for p in range(1, 11)], asks=[(p, 1) for p in range(11, 21)])
    assert book.top(BID, 3) == [(10, 1), (9, 1), (8, 1)]
    assert book.top(ASK, 2) == [(11, 1), (12, 1)]
    assert book.top(BID, 0) == []
    assert len(book.top(ASK, 100)) == 10


def test_set_level_returns_prior_quantity_and_zero_removes() -> None:
    book = OrderBook()
    assert book.set_level(BID, 100, 5) == 0
    assert book.set_level(BID, 100, 7) == 5
    assert book.qty(BID, 100) == 7
    assert book.depth(BID) == 1
    assert book.set_level(BID, 100, 0) == 7
    assert book.qty(BID, 100) == 0
    assert book.depth(BID) == 0
    assert book.best_bid() is None


def test_removing_a_missing_level_is_a_no_op() -> None:
    book = make_book(bids=[(100, 1)], asks=[(101, 1)])
    before = book.copy()
    assert book.set_level(BID, 99, 0) == 0
    assert book.set_level(ASK, 100, 0) == 0
    assert book == before
    assert book.depth(BID) == 1 and book.depth(ASK) == 1


def test_sides_are_independent() -> None:
    book = make_book(bids=[(100, 1)])
    assert book.qty(ASK, 100) == 0
    book.set_level(ASK, 100, 2)
    assert book.qty(BID, 100) == 1 and book.qty(ASK, 100) == 2


@pytest.mark.parametrize("side", ["x", "B", "bid", "", None])
def test_unknown_side_raises(side) -> None:
    book = OrderBook()
    with pytest.raises(ValueError, match="side"):
        book.set_level(side, 1, 1)
    with pytest.raises(ValueError):
        book.top(side)


@pytest.mark.parametrize(
    ("bids", "asks", "crossed"),
    [
        ([(100, 1)], [(101, 1)], False),
        ([(101, 1)], [(101, 1)], True),  # locked counts as crossed
        ([(102, 1)], [(101, 1)], True),
        ([], [(101, 1)], False),
        ([(100, 1)], [], False),
        ([], [], False),
    ],
)
def test_crossed_detection(bids, asks, crossed) -> None:
    assert make_book(bids, asks).is_crossed() is crossed


def test_replace_clears_then_adds() -> None:
    book = make_book(bids=[(100, 1), (99, 1)], asks=[(101, 1)])
    book.replace(bids=[(50, 2)], asks=[(60, 3), (61, 0)])
    assert book.top(BID) == [(50, 2)]
    assert book.top(ASK) == [(60, 3)]  # a zero quantity in a snapshot adds nothing


def test_copy_is_independent() -> None:
    book = make_book(bids=[(100, 1)], asks=[(101, 1)])
    clone = book.copy()
    assert clone == book
    clone.set_level(BID, 100, 0)
    clone.set_level(ASK, 102, 4)
    assert book.top(BID) == [(100, 1)]
    assert book.top(ASK) == [(101, 1)]
    assert clone != book
    assert clone.top(ASK) == [(101, 1), (102, 4)]  # the clone keeps the ask ordering


def test_clone_keeps_bid_ordering() -> None:
    clone = make_book(bids=[(100, 1), (101, 1)]).copy()
    clone.set_level(BID, 102, 1)
    assert [p for p, _ in clone.top(BID)] == [102, 101, 100]


def test_equality() -> None:
    a = make_book(bids=[(100, 1), (99, 2)], asks=[(101, 1)])
    b = make_book(bids=[(99, 2), (100, 1)], asks=[(101, 1)])
    assert a == b
    b.set_level(BID, 99, 3)
    assert a != b
    assert make_book(bids=[(100, 1)]) != make_book(asks=[(100, 1)])
    assert OrderBook() == OrderBook()
    assert a != "not a book"
    with pytest.raises(TypeError):
        hash(a)


def test_clear() -> None:
    book = make_book(bids=[(100, 1)], asks=[(101, 1)])
    book.clear()
    assert book == OrderBook()
    assert book.best_bid() is None and book.best_ask() is None
