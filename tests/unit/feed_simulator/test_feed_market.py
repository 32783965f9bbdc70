"""Properties of the simulated market: never crossed, bounded, on the grid, replayable, realistic."""

import random
import statistics
from collections import Counter

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


def apply_checked(replica, changes, max_levels):
    """Apply one event to ``replica`` checking what a consumer relies on, change by change."""
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
    assert replica.depth(BID) <= max_levels
    assert replica.depth(ASK) <= max_levels


def warmed(pair="BTC-USD", seed=1, params=None):
    market = SimulatedMarket(instrument(pair), random.Random(seed), params)
    while market.seeding:
        market.next_changes()
    return market


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    pair=st.sampled_from(PAIRS),
    max_levels=st.integers(1, 60),
    max_actions=st.integers(1, 20),
    steps=st.integers(1, 400),
)
def test_book_is_never_crossed_and_replays_from_its_events(seed, pair, max_levels, max_actions, steps):
    params = MarketParams(max_levels=max_levels, max_actions=max_actions)
    market = SimulatedMarket(instrument(pair), random.Random(seed), params)
    replica = OrderBook()
    inst = market.instrument
    for xseq in range(1, steps + 1):
        changes = market.next_changes()
        apply_checked(replica, changes, max_levels)
        # The changes survive the wire: canonical strings, on the tick/lot grid of the pair.
        decoded = decode_event(encode_event(pair, xseq, 1, wire(inst, changes)))
        assert list(decoded.changes) == changes
        if xseq % 50 == 0:
            assert replica == market.book
    assert replica == market.book
    assert not market.book.is_crossed()


def test_a_long_run_with_the_default_shape_stays_deep_and_uncrossed():
    params = MarketParams()
    market = SimulatedMarket(instrument("BTC-USD"), random.Random(1), params)
    replica = OrderBook()
    deepest = 0
    for _ in range(20_000):
        apply_checked(replica, market.next_changes(), params.max_levels)
        deepest = max(deepest, replica.depth(BID), replica.depth(ASK))
    assert replica == market.book
    assert deepest >= params.initial_levels
    assert market.depth(BID) > 50 and market.depth(ASK) > 50


def test_wire_changes_are_the_same_event_formatted():
    a = warmed("DOGE-USD", seed=4)
    b = warmed("DOGE-USD", seed=4)
    inst = a.instrument
    for _ in range(500):
        assert a.next_wire_changes() == wire(inst, b.next_changes())


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    tick=st.integers(1, 25),
    lot=st.integers(1, 1000),
    price_decimals=st.integers(2, 6),
)
def test_changes_stay_on_the_tick_and_lot_grid(seed, tick, lot, price_decimals):
    inst = Instrument("SYN001-USD", price_decimals=price_decimals, qty_decimals=3, tick=tick, lot=lot)
    market = SimulatedMarket(inst, random.Random(seed), MarketParams(max_levels=30))
    assert market.step % tick == 0
    for _ in range(300):
        for _side, price, qty in market.next_changes():
            assert price % tick == 0
            assert qty % lot == 0
    assert not market.book.is_crossed()


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
    book = market.book
    assert book.depth(BID) == book.depth(ASK) == params.initial_levels
    assert events == 2 * params.initial_levels // 10
    # Best bid and ask start around the pair's realistic price.
    mid = (book.best_bid()[0] + book.best_ask()[0]) / 2
    assert mid == pytest.approx(start_price(market.instrument), rel=0.001)


@pytest.mark.parametrize("pair", PAIRS)
def test_start_prices_are_realistic(pair):
    inst = instrument(pair)
    expected = float(START_PRICES.get(pair, "100"))
    assert float(inst.format_price(start_price(inst))) == pytest.approx(expected)


def test_bigger_sizes_further_from_the_top():
    market = warmed("SOL-USD", seed=5)
    bids = [qty for _, qty in market.book.top(BID)]
    near, far = bids[:50], bids[-50:]
    assert sum(far) / len(far) > 3 * sum(near) / len(near)


def test_the_spread_stays_tight_and_the_top_dense():
    """A liquid market: a few grid steps between the best prices, few holes near the top."""
    market = warmed("BTC-USD", seed=8)
    spreads, holes = [], []
    for i in range(30_000):
        market.next_changes()
        if i % 300 == 0:
            book = market.book
            spreads.append((book.best_ask()[0] - book.best_bid()[0]) // market.step)
            top = [price // market.step for price, _ in book.top(BID, 10)]
            holes.append(top[0] - top[-1] - 9)  # empty grid steps among the best 10 bids
    assert statistics.median(spreads) <= 4
    assert statistics.median(holes) <= 5


def test_the_event_mix_has_adds_size_changes_cancels_and_trades():
    """Classify every change of a run by what it did to its level."""
    market = warmed("ETH-USD", seed=2)
    replica = market.book
    kinds = Counter()
    sizes = []
    for _ in range(5_000):
        changes = market.next_changes()
        sizes.append(len(changes))
        for side, price, qty in changes:
            before = replica.qty(side, price)
            best = (replica.best_bid() if side == BID else replica.best_ask())[0]
            if not before:
                kinds["add"] += 1
            elif not qty:
                kinds["removed at the top" if price == best else "cancel"] += 1
            else:
                kinds["grew" if qty > before else "shrank"] += 1
            replica.set_level(side, price, qty)
    assert min(kinds.values()) > 100, kinds
    assert set(kinds) == {"add", "removed at the top", "cancel", "grew", "shrank"}
    assert 3 < statistics.mean(sizes) < 8  # several changes per event
    assert max(sizes) > 12  # trades sweeping levels and requotes make some events big


def test_trades_consume_the_best_levels():
    market = warmed("SYN001-USD", seed=3)
    book = market.book
    best_before = book.best_bid()[0]
    for _ in range(200):
        market._trade(0, market._rng)
    market._net()
    book = market.book
    assert book.best_bid()[0] < best_before  # the top of the bids was eaten
    assert book.depth(BID) >= 1  # one level always survives


def test_more_actions_per_event_make_bigger_events():
    def mean_changes(max_actions):
        market = warmed("BTC-USD", seed=6, params=MarketParams(max_actions=max_actions))
        return statistics.mean(len(market.next_changes()) for _ in range(2_000))

    assert mean_changes(12) > 1.5 * mean_changes(4)


def test_the_mid_walks_but_stays_near_its_start():
    market = SimulatedMarket(instrument("BTC-USD"), random.Random(11), MarketParams(max_levels=50))
    start = market.mid_price
    mids = set()
    for _ in range(20_000):
        market.next_changes()
        mids.add(market.mid_price)
    assert len(mids) > 20
    assert all(abs(m - start) <= 0.21 * start for m in mids)
    book = market.book
    bid, ask = book.best_bid()[0], book.best_ask()[0]
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
    with pytest.raises(ValueError, match="max_actions"):
        MarketParams(max_actions=0)
    with pytest.raises(ValueError, match="within"):
        MarketParams(move_prob=0.5, trade_prob=0.4, requote_prob=0.2)
    with pytest.raises(ValueError, match="positive"):
        SimulatedMarket(instrument("BTC-USD"), random.Random(1), price=0)
