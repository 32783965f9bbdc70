"""coalesce: a window's net levels turn the book at the window's start into the live book."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mdcore.book import ASK, BID, OrderBook
from mdcore.coalesce import WindowChanges
from mdcore.codec import decode_delta, encode_delta
from mdcore.instruments import instrument
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, Snapshot
from mdcore.wire_format import book_checksum

# A narrow price range makes collisions (the same level touched again) common.
prices = st.integers(min_value=1, max_value=40)
qtys = st.integers(min_value=0, max_value=4)  # 0 (remove) about one time in five
levels = st.dictionaries(prices, st.integers(min_value=1, max_value=4), max_size=25)
changes = st.lists(st.tuples(st.sampled_from([BID, ASK]), prices, qtys), max_size=60)
windows = st.lists(changes, max_size=8)


def book_of(bids: dict[int, int], asks: dict[int, int]) -> OrderBook:
    book = OrderBook()
    book.replace(bids.items(), asks.items())
    return book


def apply_net(book: OrderBook, bids, asks) -> None:
    for price, qty in bids:
        book.set_level(BID, price, qty)
    for price, qty in asks:
        book.set_level(ASK, price, qty)


@settings(deadline=None, max_examples=300)
@given(levels, levels, windows)
def test_net_levels_replay_to_the_live_book(bids0, asks0, window_list) -> None:
    live = book_of(bids0, asks0)
    replica = live.copy()  # sees only the coalesced deltas
    reference = {BID: dict(bids0), ASK: dict(asks0)}  # sees every raw change, naively
    for window in window_list:
        start = live.copy()
        w = WindowChanges()
        for side, price, qty in window:
            w.apply(live, side, price, qty)
            if qty:
                reference[side][price] = qty
            else:
                reference[side].pop(price, None)
        assert w.is_empty() == (not window)
        net_bids, net_asks = w.net_levels(live)

        # Best first, and each entry is a real change from the window's start.
        assert net_bids == sorted(net_bids, reverse=True)
        assert net_asks == sorted(net_asks)
        assert all(start.qty(BID, p) != q for p, q in net_bids)
        assert all(start.qty(ASK, p) != q for p, q in net_asks)

        replay = start.copy()
        apply_net(replay, net_bids, net_asks)
        assert replay == live
        apply_net(replica, net_bids, net_asks)
        assert replica == live
        assert dict(live.iter_side(BID)) == reference[BID]
        assert dict(live.iter_side(ASK)) == reference[ASK]


@settings(deadline=None, max_examples=100)
@given(levels, levels, windows)
def test_coalesced_deltas_verify_through_the_wire(bids0, asks0, window_list) -> None:
    """md_service's path (coalesce, format, checksum, encode) against a client's LocalBook."""
    inst = instrument("SOL-USD")

    def wire(levels) -> list[list[str]]:
        return [[inst.format_price(p), inst.format_qty(q)] for p, q in levels]

    live = book_of(bids0, asks0)
    client = LocalBook("SOL-USD")
    checksum = book_checksum(live, inst)
    client.load_snapshot(Snapshot("SOL-USD", "e1", 10, 0, wire(live.top(BID)), wire(live.top(ASK)), checksum))
    seq = 10
    for window in window_list:
        w = WindowChanges()
        for side, price, qty in window:
            w.apply(live, side, price, qty)
        net_bids, net_asks = w.net_levels(live)
        if not net_bids and not net_asks:
            continue  # nothing changed: no delta for this pair
        seq += 1
        delta = Delta("SOL-USD", "e1", seq, 1, 1, wire(net_bids), wire(net_asks), book_checksum(live, inst))
        assert client.apply_delta(decode_delta(encode_delta(delta))) is True
        assert client.book == live
    assert client.seq == seq


def test_level_added_then_removed_in_a_window_leaves_no_entry() -> None:
    book = book_of({100: 1}, {200: 1})
    w = WindowChanges()
    w.apply(book, BID, 101, 5)
    w.apply(book, BID, 101, 0)
    w.apply(book, ASK, 199, 3)
    w.apply(book, ASK, 199, 0)
    assert not w.is_empty()
    assert w.net_levels(book) == ([], [])


def test_level_changed_back_to_its_opening_quantity_leaves_no_entry() -> None:
    book = book_of({100: 1}, {})
    w = WindowChanges()
    w.apply(book, BID, 100, 9)
    w.apply(book, BID, 100, 0)
    w.apply(book, BID, 100, 1)
    assert w.net_levels(book) == ([], [])


def test_many_changes_to_one_level_become_the_last_one() -> None:
    book = book_of({100: 1}, {200: 1})
    w = WindowChanges()
    for qty in (2, 3, 4, 5):
        w.apply(book, BID, 100, qty)
    w.apply(book, ASK, 200, 0)
    w.apply(book, ASK, 201, 7)
    assert w.net_levels(book) == ([(100, 5)], [(200, 0), (201, 7)])


def test_removing_a_missing_level_is_no_change() -> None:
    book = book_of({100: 1}, {})
    w = WindowChanges()
    w.apply(book, BID, 50, 0)
    assert w.net_levels(book) == ([], [])


def test_net_levels_are_best_first() -> None:
    book = OrderBook()
    w = WindowChanges()
    for price in (5, 9, 1, 7):
        w.apply(book, BID, price, 1)
        w.apply(book, ASK, price + 10, 1)
    bids, asks = w.net_levels(book)
    assert [p for p, _ in bids] == [9, 7, 5, 1]
    assert [p for p, _ in asks] == [11, 15, 17, 19]


def test_note_event_counts_and_keeps_the_earliest_exchange_time() -> None:
    w = WindowChanges()
    assert w.first_xts is None and w.events == 0
    for xts in (30, 10, 20):
        w.note_event(xts)
    assert w.events == 3
    assert w.first_xts == 10


def test_an_undone_window_absorbs_the_one_opened_after_it() -> None:
    book = OrderBook()
    book.set_level(BID, 100, 1)
    first, later = WindowChanges(), WindowChanges()
    first.apply(book, BID, 100, 5)
    first.note_event(30)
    later.apply(book, BID, 100, 9)  # touched in both: counted from the first window's start
    later.apply(book, ASK, 101, 2)
    later.note_event(20)
    first.absorb(later)
    assert first.net_levels(book) == ([(100, 9)], [(101, 2)])
    assert (first.events, first.first_xts) == (2, 20)
    book.set_level(BID, 100, 1)
    book.set_level(ASK, 101, 0)
    assert first.net_levels(book) == ([], [])  # back where the first window started: no change
