"""GridBook: levels on an integer grid, best/worst kept by index arithmetic, net changes per event.

The reference is a naive book: per side a plain dict, best and worst found by min/max.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from feed_simulator.grid_book import OUTWARD, SIDES, GridBook
from mdcore.book import ASK, BID, OrderBook

# (side number, grid index, qty units); 0 removes. Negative indices too: which indices a side
# may use is the market's rule, not the book's.
actions = st.tuples(st.integers(0, 1), st.integers(-4, 24), st.integers(0, 3))
events = st.lists(st.lists(actions, min_size=1, max_size=8), min_size=1, max_size=30)


def best_and_worst(levels: dict[int, int], s: int) -> tuple[int, int]:
    """The naive answer: bids are best at the highest index, asks at the lowest."""
    return (max(levels), min(levels)) if s == 0 else (min(levels), max(levels))


def check_against(grid: GridBook, naive: tuple[dict[int, int], dict[int, int]]) -> None:
    for s in (0, 1):
        assert grid.depth(SIDES[s]) == len(naive[s])
        if naive[s]:
            assert (grid._best[s], grid._worst[s]) == best_and_worst(naive[s], s)


@settings(max_examples=200, deadline=None)
@given(events=events, step=st.integers(1, 7))
def test_levels_best_worst_and_book_match_a_naive_dict_book(events, step):
    grid = GridBook(step)
    naive: tuple[dict[int, int], dict[int, int]] = ({}, {})
    for event in events:
        for s, index, qty in event:
            grid._set(s, index, qty)
            if qty:
                naive[s][index] = qty
            else:
                naive[s].pop(index, None)
            check_against(grid, naive)
        grid._net()
    expected = OrderBook()
    for s in (0, 1):
        for index, qty in naive[s].items():
            expected.set_level(SIDES[s], index * step, qty)
    assert grid.book == expected


@settings(max_examples=200, deadline=None)
@given(events=events)
def test_net_changes_replayed_on_the_old_book_give_the_new_one_removals_first(events):
    grid = GridBook(1)
    replica: tuple[dict[int, int], dict[int, int]] = ({}, {})
    for event in events:
        before = (dict(replica[0]), dict(replica[1]))
        for s, index, qty in event:
            grid._set(s, index, qty)
        changes = grid._net()
        # Each level at most once, and only levels whose quantity really changed.
        assert len({(s, index) for s, index, _ in changes}) == len(changes)
        for s, index, qty in changes:
            assert before[s].get(index, 0) != qty
        # Removals (qty 0) all come before any add or resize.
        kinds = [qty == 0 for _, _, qty in changes]
        assert kinds == sorted(kinds, reverse=True)
        for s, index, qty in changes:
            if qty:
                replica[s][index] = qty
            else:
                del replica[s][index]
        assert replica == grid._levels


def test_an_event_that_ends_where_it_started_has_no_net_changes():
    grid = GridBook(10)
    grid._set(0, 5, 3)
    grid._net()
    grid._set(0, 5, 7)  # resized...
    grid._set(0, 5, 3)  # ...and back
    grid._set(1, 9, 2)  # added...
    grid._set(1, 9, 0)  # ...and gone
    assert grid._net() == []


def test_net_reports_the_removal_of_a_level_before_the_add_that_replaces_it():
    grid = GridBook(10)
    grid._set(0, 5, 3)
    grid._set(1, 6, 4)
    grid._net()
    grid._set(0, 6, 1)  # a bid added first, at the ask's price...
    grid._set(1, 6, 0)  # ...then the ask removed: published the other way round
    grid._set(1, 7, 4)
    assert grid._net() == [(1, 6, 0), (0, 6, 1), (1, 7, 4)]


def test_net_starts_afresh_after_each_event():
    grid = GridBook(1)
    grid._set(1, 3, 5)
    assert grid._net() == [(1, 3, 5)]
    assert grid._net() == []
    grid._set(1, 3, 6)
    assert grid._net() == [(1, 3, 6)]


def test_the_book_is_priced_by_the_step_and_is_a_copy():
    grid = GridBook(25)
    grid._set(0, 4, 10)
    grid._set(0, 2, 20)
    grid._set(1, 5, 30)
    book = grid.book
    assert book.top(BID) == [(100, 10), (50, 20)]
    assert book.top(ASK) == [(125, 30)]
    book.set_level(ASK, 125, 0)
    assert grid.book.top(ASK) == [(125, 30)]
    assert grid.depth(ASK) == 1


def test_removing_the_best_or_worst_finds_the_next_one_across_gaps():
    grid = GridBook(1)
    for index in (10, 4, 1):  # bids: best 10, worst 1
        grid._set(0, index, 1)
    for index in (11, 17, 30):  # asks: best 11, worst 30
        grid._set(1, index, 1)
    assert (grid._best, grid._worst) == ([10, 11], [1, 30])
    grid._set(0, 10, 0)
    grid._set(1, 11, 0)
    assert (grid._best, grid._worst) == ([4, 17], [1, 30])
    grid._set(0, 1, 0)
    grid._set(1, 30, 0)
    assert (grid._best, grid._worst) == ([4, 17], [4, 17])


def test_outward_points_away_from_the_mid():
    assert SIDES == (BID, ASK)
    assert OUTWARD == (-1, 1)  # bids get worse downwards, asks upwards
