"""The encoded event stream a consumer of the topic sees, without Kafka."""

from collections import defaultdict

from feed_simulator.market import MarketParams, build_markets
from feed_simulator.source import EventSource
from mdcore.book import OrderBook
from mdcore.events import decode_event

PAIRS = ["BTC-USD", "XRP-USD", "SYN007-USD"]


def source(seed=1, pairs=PAIRS):
    return EventSource(build_markets(pairs, seed, MarketParams(max_levels=30)))


def test_events_are_keyed_by_pair_with_contiguous_xseq_and_rebuild_each_book():
    src = source()
    seen = defaultdict(list)
    books = defaultdict(OrderBook)
    for i in range(900):
        event = src.next_event(xts=1_000 + i)
        decoded = decode_event(event.value)
        assert event.key == decoded.pair.encode() == event.pair.encode()
        assert decoded.xts == 1_000 + i
        assert event.changes == len(decoded.changes)
        seen[decoded.pair].append(decoded.xseq)
        for side, price, qty in decoded.changes:
            books[decoded.pair].set_level(side, price, qty)
    assert sorted(seen) == sorted(PAIRS)
    for pair in PAIRS:
        assert seen[pair] == list(range(1, 301))  # round robin: 1/3 each, xseq from 1
    assert src.last_xseq() == dict.fromkeys(PAIRS, 300)
    for market in src._markets:
        assert books[market.pair] == market.book


def test_same_seed_same_bytes():
    a, b = source(seed=5), source(seed=5)
    assert [a.next_event(7).value for _ in range(200)] == [b.next_event(7).value for _ in range(200)]
