"""One pair's Binance feed, and how every break in the stream reaches a Binance client as a jump.

A follower here is the reference client's documented procedure (``DepthBook``), fed with
the feed's events and with REST-equivalent snapshots of the replica's book.
"""

from __future__ import annotations

import orjson

from gateway.binance.events import book_levels8
from gateway.binance.feed import PairFeed
from gateway.binance.symbols import SymbolInfo
from gateway.binance.update_ids import ID_SCALE, UpdateIds
from mdcore.book import ASK, BID
from mdcore.codec import decode_delta
from mdcore.local_book import LocalBook
from tests.binance_client.binance_reference_client import DepthBook
from tests.unit.gateway.md_service_free_fixtures import Stream

E1 = "1732190400000-aaaaaa"
E2 = "1732190460000-bbbbbb"  # a minute later


def _feed() -> PairFeed:
    return PairFeed(SymbolInfo.of("BTC-USD"), UpdateIds(lambda: 0))


def _snapshot(feed: PairFeed, local: LocalBook) -> dict:
    """What GET /api/v3/depth answers for this book."""
    return {
        "lastUpdateId": feed.update_id(local),
        "bids": book_levels8(local, BID, None),
        "asks": book_levels8(local, ASK, None),
    }


def _follow(book: DepthBook, event: bytes) -> None:
    book.on_event(orjson.loads(event))


def _assert_same(book: DepthBook, feed: PairFeed, local: LocalBook) -> None:
    expected = _snapshot(feed, local)
    assert book.last_update_id == expected["lastUpdateId"]
    assert (book.sorted_bids(), book.sorted_asks()) == (expected["bids"], expected["asks"])


def test_each_window_is_one_event_whose_ids_follow_the_previous() -> None:
    stream, feed = Stream("BTC-USD", 5, epoch=E1), _feed()
    events = [orjson.loads(feed.on_delta(decode_delta(stream.delta(s))).fast) for s in range(1, 6)]
    assert [(e["U"], e["u"]) for e in events] == [(1732190400000 * ID_SCALE + s,) * 2 for s in range(1, 6)]
    first = decode_delta(stream.delta(1))
    assert events[0]["s"] == "BTCUSD" and events[0]["E"] == first.ts // 1_000_000
    assert events[0]["b"] == [[p + "000000", q + "000"] for p, q in first.bids]
    assert feed.last_id == events[-1]["u"]


def test_a_follower_tracks_the_source_book_through_the_feed() -> None:
    stream, feed, follower = Stream("BTC-USD", 12, epoch=E1), _feed(), DepthBook("BTCUSD")
    for seq in range(1, 4):
        _follow(follower, feed.on_delta(decode_delta(stream.delta(seq))).fast)
    assert follower.on_snapshot(_snapshot(feed, stream.book_at(3)))
    for seq in range(4, 13):
        _follow(follower, feed.on_delta(decode_delta(stream.delta(seq))).fast)
    _assert_same(follower, feed, stream.book_at(12))
    assert follower.resyncs == 0


def test_a_reload_past_a_gap_is_a_jump_that_makes_the_follower_resync() -> None:
    stream, feed, follower = Stream("BTC-USD", 12, epoch=E1), _feed(), DepthBook("BTCUSD")
    _follow(follower, feed.on_delta(decode_delta(stream.delta(1))).fast)
    follower.on_snapshot(_snapshot(feed, stream.book_at(1)))
    for seq in range(2, 5):
        _follow(follower, feed.on_delta(decode_delta(stream.delta(seq))).fast)
    # The replica lost 5..8 for good and reloaded the book at 8: no event for them.
    closed = feed.on_reset(stream.book_at(8))
    assert orjson.loads(closed)["U"] == feed.ids.update_id(E1, 1)  # the fold closed at the break
    _follow(follower, feed.on_delta(decode_delta(stream.delta(9))).fast)
    assert not follower.synced and follower.resyncs == 1  # U jumped: not applied
    follower.on_snapshot(_snapshot(feed, stream.book_at(9)))
    for seq in range(10, 13):
        _follow(follower, feed.on_delta(decode_delta(stream.delta(seq))).fast)
    _assert_same(follower, feed, stream.book_at(12))


def test_a_new_epoch_is_a_jump_forward() -> None:
    old, new, feed = Stream("BTC-USD", 6, epoch=E1), Stream("BTC-USD", 3, epoch=E2), _feed()
    follower = DepthBook("BTCUSD")
    _follow(follower, feed.on_delta(decode_delta(old.delta(1))).fast)
    follower.on_snapshot(_snapshot(feed, old.book_at(1)))
    for seq in range(2, 7):
        _follow(follower, feed.on_delta(decode_delta(old.delta(seq))).fast)
    last_old = feed.last_id
    feed.on_reset(new.book_at(1))
    event = orjson.loads(feed.on_delta(decode_delta(new.delta(2))).fast)
    assert event["U"] > last_old + 1
    _follow(follower, orjson.dumps(event))
    assert follower.resyncs == 1
    follower.on_snapshot(_snapshot(feed, new.book_at(2)))
    _follow(follower, feed.on_delta(decode_delta(new.delta(3))).fast)
    _assert_same(follower, feed, new.book_at(3))


def test_a_book_that_went_back_inside_its_epoch_still_moves_ids_forward() -> None:
    stream, feed = Stream("BTC-USD", 10, epoch=E1), _feed()
    for seq in range(1, 9):
        feed.on_delta(decode_delta(stream.delta(seq)))
    top = feed.last_id
    feed.on_reset(stream.book_at(5))  # a rewritten history: the stored book is back at seq 5
    assert feed.update_id(stream.book_at(5)) >= top + 2
    event = orjson.loads(feed.on_delta(decode_delta(stream.delta(6))).fast)
    assert event["U"] > top + 1  # a jump, not an id the clients already passed


def test_a_rewritten_history_replayed_before_the_reset_still_jumps() -> None:
    # The gateway's replica replays what it buffered while reloading, then reports the reset.
    stream, feed = Stream("BTC-USD", 10, epoch=E1), _feed()
    for seq in range(1, 9):
        feed.on_delta(decode_delta(stream.delta(seq)))
    top = feed.last_id
    replayed = orjson.loads(feed.on_delta(decode_delta(stream.delta(6))).fast)  # back at seq 6
    assert replayed["U"] >= top + 2
    feed.on_reset(stream.book_at(6))
    following = orjson.loads(feed.on_delta(decode_delta(stream.delta(7))).fast)
    assert following["U"] == replayed["u"] + 1  # and the stream goes on from there
    assert feed.update_id(stream.book_at(7)) == following["u"]


def test_a_subscriber_that_missed_events_sees_the_jump() -> None:
    stream, feed, follower = Stream("BTC-USD", 8, epoch=E1), _feed(), DepthBook("BTCUSD")
    _follow(follower, feed.on_delta(decode_delta(stream.delta(1))).fast)
    follower.on_snapshot(_snapshot(feed, stream.book_at(1)))
    events = [feed.on_delta(decode_delta(stream.delta(seq))).fast for seq in range(2, 9)]
    for event in events[:2] + events[4:]:  # its connection lagged through seqs 4 and 5
        _follow(follower, event)
    assert follower.resyncs == 1 and not follower.synced


def test_the_slow_stream_folds_consecutive_windows() -> None:
    stream, feed = Stream("BTC-USD", 4, epoch=E1), _feed()
    for seq in range(1, 5):
        assert feed.on_delta(decode_delta(stream.delta(seq))).slow is None
    event = orjson.loads(feed.flush_slow())
    assert (event["U"], event["u"]) == (feed.ids.update_id(E1, 1), feed.ids.update_id(E1, 4))
    assert feed.flush_slow() is None


def test_partial_books_are_encoded_once_per_update_id() -> None:
    stream, feed = Stream("BTC-USD", 3, epoch=E1), _feed()
    uid, payload = feed.partial(stream.book_at(2), 5)
    assert feed.partial(stream.book_at(2), 5)[1] is payload
    assert orjson.loads(payload)["lastUpdateId"] == uid == feed.ids.update_id(E1, 2)
    assert feed.partial(stream.book_at(3), 5)[0] == uid + 1
