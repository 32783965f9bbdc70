"""The exchange's own books: applied by xseq; a restarted feed's repeats are checked, not applied."""

from __future__ import annotations

import pytest

from bookcast.chaos.source import SourceBuilder, SourceGapError, wire_book
from mdcore.book import ASK, BID
from mdcore.events import ExchangeEvent


def event(xseq: int, *changes: tuple[str, int, int], pair: str = "BTC-USD") -> ExchangeEvent:
    return ExchangeEvent(pair, xseq, 1_000 + xseq, tuple(changes))


def test_events_are_applied_in_xseq_order_per_pair() -> None:
    builder = SourceBuilder()
    builder.add(event(1, (BID, 6_400_000, 100_000), (ASK, 6_400_100, 50_000)))
    builder.add(event(1, (BID, 300_000, 1), pair="ETH-USD"))
    builder.add(event(2, (BID, 6_400_000, 0), (BID, 6_399_900, 7)))
    btc = builder.books["BTC-USD"]
    assert (btc.last_xseq, btc.events) == (2, 2)
    assert wire_book(btc.book, "BTC-USD") == ([("63999.00", "0.00007")], [("64001.00", "0.50000")])
    assert builder.messages == 3


def test_a_faithful_replay_is_skipped_and_counted() -> None:
    builder = SourceBuilder(allow_replays=True)
    first = [event(1, (BID, 100, 1)), event(2, (BID, 100, 5)), event(3, (ASK, 200, 2))]
    for e in first:
        builder.add(e)
    for e in first[:2]:  # the restarted feed starts again at xseq 1 with the same seed
        builder.add(ExchangeEvent(e.pair, e.xseq, e.xts + 999, e.changes))  # only the time differs
    builder.add(event(4, (ASK, 200, 0)))
    src = builder.books["BTC-USD"]
    assert (src.last_xseq, src.events, src.replays, builder.replays) == (4, 4, 2, 2)
    assert wire_book(src.book, "BTC-USD") == ([("1.00", "0.00005")], [])


def test_a_replay_with_other_changes_is_the_exchange_contradicting_itself() -> None:
    builder = SourceBuilder(allow_replays=True)
    builder.add(event(1, (BID, 100, 1)))
    with pytest.raises(SourceGapError, match="repeated with other changes"):
        builder.add(event(1, (BID, 100, 2)))


def test_a_skipped_xseq_is_a_gap_and_without_replays_so_is_a_repeat() -> None:
    builder = SourceBuilder()
    builder.add(event(1, (BID, 100, 1)))
    with pytest.raises(SourceGapError, match="xseq 3 after 1"):
        builder.add(event(3, (BID, 100, 1)))
    with pytest.raises(AssertionError, match="xseq 1 after 1"):
        builder.add(event(1, (BID, 100, 1)))
