"""Properties of the simulated market: never crossed, bounded, on the grid, replayable."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feed_simulator.market import (
    START_PRICES,
    MarketParams,
    SimulatedMarket,
    build_markets,
    start_price,
)
from mdcore.book import ASK, BID, OrderBook
from mdcore.events import decode_event, encode_event
from mdcore.instruments import NAMED_PAIRS, Instrument, instrument

PAIRS = [*NAMED_PAIRS, "SYN000-USD", "SYN4242-USD"]


def wire(inst, changes):
    return [(side, inst.format_price(price), inst.format_qty(qty)) for side, price, qty in changes]


def check_event(market, replica, changes, max_levels):
    """Everything a consumer relies on for one event; applies it to ``replica``."""
    assert changes, "an event has at least one change"
    levels = [(side, price) for side, price, _ in changes]
    assert len(levels) == len(set(levels)), "each level at most once per event"
    for side, price, qty in changes:
        assert side in (BID, ASK)
        assert price > 0
        assert qty >= 0
        assert replica.qty(side, price) != qty, "only real changes are emitted"
        replica.set_level(side, price, qty)
        assert not replica.is_crossed(), "not even between two changes of one event"
    assert replica == market.book
    assert not market.book.is_crossed()
    assert market.book.depth(BID) <= max_levels
    assert market.book.depth(ASK) <= max_levels


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    pair=st.sampled_from(PAIRS),
    max_levels=st.integers(1, 60),
    steps=st.integers(1, 400),
)
def test_book_stays_sane_and_replays_from_its_events(seed, pair, max_levels, steps):
    market = SimulatedMarket(instrument(pair), random.Random(seed), MarketParams(max_levels=max_levels))
    replica = OrderBook()
    inst = market.instrument
    for xseq in range(1, steps + 1):
        changes = market.next_changes()
        check_event(market, replica, changes, max_levels)
        # The changes survive the wire: canonical strings, on the tick/lot grid of the pair.
        decoded = decode_event(encode_event(pair, xseq, 1, wire(inst, changes)))
        assert list(decoded.changes) == changes


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    tick=st.integers(1, 25),
    lot=st.integers(1, 1000),
    price_decimals=st.integers(2, 6),
)
def test_changes_stay_on_a_coarse_tick_and_lot_grid(seed, tick, lot, price_decimals):
    inst = Instrument("SYN001-USD", price_decimals=price_decimals, qty_decimals=3, tick=tick, lot=lot)
    market = SimulatedMarket(inst, random.Random(seed), MarketParams(max_levels=30))
    for _ in range(300):
        for _side, price, qty in market.next_changes():
            assert price % tick == 0
            assert qty % lot == 0
    assert not market.book.is_crossed()


def test_default_books_are_deep_but_bounded():
    params = MarketParams()
    market = SimulatedMarket(instrument("BTC-USD"), random.Random(1), params)
    replica = OrderBook()
    deepest = 0
    for _ in range(20_000):
        check_event(market, replica, market.next_changes(), params.max_levels)
        deepest = max(deepest, market.book.depth(BID), market.book.depth(ASK))
    assert deepest >= params.initial_levels
    assert market.book.depth(BID) > 50
    assert market.book.depth(ASK) > 50


def test_the_first_events_publish_the_initial_book_best_levels_first():
    params = MarketParams(max_levels=100, seed_chunk=10)
    market = SimulatedMarket(instrument("ETH-USD"), random.Random(3), params)
    first = market.next_changes()
    assert len(first) == 10
    assert all(qty > 0 for _, _, qty in first)
    assert {side for side, _, _ in first} == {BID, ASK}
    events = 1
    while market.seeding:
        market.next_changes()
        events += 1
    assert market.book.depth(BID) == market.book.depth(ASK) == params.initial_levels
    assert events == 2 * params.initial_levels // 10
    # Best bid and ask start around the pair's realistic price.
    mid = (market.book.best_bid()[0] + market.book.best_ask()[0]) / 2
    assert mid == pytest.approx(start_price(market.instrument), rel=0.001)


@pytest.mark.parametrize("pair", PAIRS)
def test_start_prices_are_realistic(pair):
    inst = instrument(pair)
    expected = float(START_PRICES.get(pair, "100"))
    assert float(inst.format_price(start_price(inst))) == pytest.approx(expected)


def test_bigger_sizes_further_from_the_top():
    market = SimulatedMarket(instrument("SOL-USD"), random.Random(5))
    while market.seeding:
        market.next_changes()
    bids = [qty for _, qty in market.book.top(BID)]
    near, far = bids[:50], bids[-50:]
    assert sum(far) / len(far) > 3 * sum(near) / len(near)


def test_the_mid_walks_but_stays_near_its_start():
    market = SimulatedMarket(instrument("BTC-USD"), random.Random(11), MarketParams(max_levels=50))
    start = market.mid_price
    mids = set()
    for _ in range(20_000):
        market.next_changes()
        mids.add(market.mid_price)
    assert len(mids) > 20
    assert all(abs(m - start) <= 0.21 * start for m in mids)
    bid, ask = market.book.best_bid()[0], market.book.best_ask()[0]
    assert bid <= market.mid_price < ask


def test_same_seed_same_events_different_seed_different_events():
    def run(seed):
        markets = build_markets(["BTC-USD", "DOGE-USD"], seed, MarketParams(max_levels=40))
        return [m.next_changes() for _ in range(300) for m in markets]

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_a_pair_does_not_depend_on_the_other_pairs_of_the_run():
    alone = build_markets(["ETH-USD"], 9, MarketParams(max_levels=40))[0]
    among = build_markets(["BTC-USD", "ETH-USD", "SYN001-USD"], 9, MarketParams(max_levels=40))[1]
    assert [alone.next_changes() for _ in range(200)] == [among.next_changes() for _ in range(200)]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="max_levels"):
        MarketParams(max_levels=0)
    with pytest.raises(ValueError, match="positive"):
        SimulatedMarket(instrument("BTC-USD"), random.Random(1), price=0)
