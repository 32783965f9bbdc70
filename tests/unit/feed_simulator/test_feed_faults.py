"""Fault injection: what a consumer sees matches what the report counts, and the books survive."""

import random
from collections import Counter, defaultdict

import pytest

from feed_simulator.config import FeedConfig
from feed_simulator.faults import MALFORMED_KINDS, FaultInjector, FaultRates, malformed
from feed_simulator.market import MarketParams, build_markets
from feed_simulator.producer import pump
from feed_simulator.replay import restamp
from feed_simulator.source import EventSource
from mdcore.book import OrderBook
from mdcore.errors import InvalidEventError
from mdcore.events import decode_event
from tests.unit.feed_simulator.feed_fakes import FakeProducer

PAIRS = ("BTC-USD", "DOGE-USD", "SYN001-USD")
PARAMS = MarketParams(max_levels=40)


def consume(messages):
    """A consumer like md_service: validate, skip xseq <= last, apply; count what it skipped."""
    seen = Counter()
    last = defaultdict(int)
    books = defaultdict(OrderBook)
    for key, value in messages:
        try:
            event = decode_event(value)
        except InvalidEventError:
            seen["malformed"] += 1
            continue
        assert event.pair.encode() == key, "every message stays on its pair's key (partition)"
        if event.xseq == last[event.pair]:
            seen["duplicate"] += 1
        elif event.xseq < last[event.pair]:
            seen["redelivery"] += 1
        else:
            assert event.xseq == last[event.pair] + 1, "real events are never lost or reordered"
            last[event.pair] = event.xseq
            for side, price, qty in event.changes:
                books[event.pair].set_level(side, price, qty)
    return seen, books, last


def run(rates, events=3_000, seed=5):
    cfg = FeedConfig("unused:1", topic="t", pairs=PAIRS, rate=1e9, seed=seed, faults=rates)
    producer = FakeProducer()
    report = pump(cfg, producer, max_events=events, params=PARAMS)
    return report, [(key, value) for _, key, value in producer.produced]


def test_a_consumer_sees_exactly_the_faults_the_report_counts():
    report, messages = run(FaultRates(duplicate=0.03, redelivery=0.02, malformed=0.02))
    seen, books, last = consume(messages)
    injected = report.injected
    assert {k: injected[k] for k in ("duplicate", "redelivery", "malformed")} == dict(seen)
    assert min(seen.values()) > 20  # every kind happened often enough to mean something
    assert sum(v for k, v in injected.items() if k.startswith("malformed:")) == injected["malformed"]
    assert report.produced_events == report.delivered_events == 3_000
    assert report.injected_delivered == sum(seen.values())
    assert len(messages) == 3_000 + sum(seen.values())
    assert sum(last.values()) == 3_000
    # Faults change nothing for a correct consumer: the books are the markets' books.
    for market in build_markets(PAIRS, 5, PARAMS):
        for _ in range(last[market.pair]):
            market.next_changes()
        assert books[market.pair] == market.book


def test_without_fault_rates_nothing_is_injected():
    report, messages = run(FaultRates(), events=500)
    assert report.injected == {}
    assert len(messages) == 500
    assert consume(messages)[0] == Counter()


@pytest.mark.parametrize("kind", ["duplicate", "redelivery", "malformed"])
def test_each_fault_can_be_switched_on_alone(kind):
    report, messages = run(FaultRates(**{kind: 0.05}), events=1_000)
    seen, _, _ = consume(messages)
    assert set(seen) == {kind}
    assert seen[kind] == report.injected[kind] > 0


def test_the_seed_fixes_where_faults_go():
    def messages(seed):  # without the exchange times, which are the clock's
        return [(key, restamp(value, 0)) for key, value in run(rates, events=600, seed=seed)[1]]

    rates = FaultRates(duplicate=0.05, redelivery=0.05, malformed=0.05)
    assert messages(1) == messages(1)
    assert messages(1) != messages(2)


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_every_malformed_kind_is_rejected_whole(kind):
    event = EventSource(build_markets(["BTC-USD"], 1, PARAMS)).next_event(123)
    bad = malformed(kind, event)
    assert b"\n" not in bad and bad != event.value
    with pytest.raises(InvalidEventError):
        decode_event(bad)


def test_a_redelivery_follows_the_pairs_next_event():
    injector = FaultInjector(FaultRates(redelivery=1.0), random.Random(1))
    source = EventSource(build_markets(["BTC-USD", "ETH-USD"], 1, PARAMS))
    first, other, second = (source.next_event(1) for _ in range(3))
    assert injector.after(first) == []  # held back
    assert injector.after(other) == []  # another pair: still held
    late = injector.after(second)
    assert [(m.kind, m.value) for m in late] == [("redelivery", first.value)]
    assert injector.pending() == 2  # `other` and `second` wait for their pairs' next events


def test_rates_outside_zero_to_one_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        FaultRates(duplicate=1.5)
    with pytest.raises(ValueError, match="malformed"):
        FaultRates(malformed=-0.1)
