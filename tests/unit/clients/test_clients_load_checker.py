"""The load generator's per-connection rules, with plain calls: continuity, gaps, checksums, latency."""

from __future__ import annotations

import dataclasses

import orjson

from clients.load.checker import RESYNC_RETRY_NS, StreamChecker
from clients.load.stats import Latencies, LoadCounters
from tests.unit.clients.scripted_server import SourceBook, encode

NOW = 10**18


def checker(pairs=("BTC-USD",), verify=False):
    counters, latencies = LoadCounters(), Latencies()
    check = StreamChecker(pairs, counters, latencies, verify)
    op = orjson.loads(check.subscribe_op(NOW))
    assert op == {"op": "subscribe", "pairs": list(pairs), "id": 1}
    return check, counters, latencies


def feed(check, *messages, now=NOW):
    """One frame holding ``messages`` (an array frame if several)."""
    payload = (
        b"[" + b",".join(encode(m) for m in messages) + b"]" if len(messages) > 1 else encode(messages[0])
    )
    check.on_frame(payload, now)
    return [orjson.loads(op) for op in check.take_ops()]


def test_a_contiguous_stream_counts_deltas_and_latencies():
    check, counters, latencies = checker()
    source = SourceBook.with_depth()
    assert feed(check, source.snapshot()) == []
    deltas = [source.bump() for _ in range(5)]
    now = max(d.ts for d in deltas) + 2_000_000  # 2 ms after the last window closed
    assert feed(check, *deltas[:3], now=now) == []  # an array frame: three messages
    assert feed(check, *deltas[3:], now=now) == []
    assert (counters.frames, counters.messages, counters.snapshots, counters.deltas) == (3, 6, 1, 5)
    assert counters.gaps == counters.resyncs == counters.stale == 0
    assert latencies.window.get_total_count() == latencies.exchange.get_total_count() == 5
    assert (
        2_000 <= latencies.window.get_value_at_percentile(0) <= latencies.window.get_max_value() < 3_000_000
    )
    assert latencies.exchange.get_value_at_percentile(50) > latencies.window.get_value_at_percentile(50)


def test_a_gap_counts_once_asks_for_a_snapshot_and_heals():
    check, counters, _ = checker()
    source = SourceBook.with_depth()
    feed(check, source.snapshot())
    source.bump()  # lost
    assert feed(check, source.bump()) == [{"op": "resync", "pair": "BTC-USD"}]
    assert (counters.gaps, counters.resyncs) == (1, 1)
    assert feed(check, source.bump()) == []  # waiting: ignored, not a second gap
    assert counters.ignored == 1
    feed(check, source.snapshot())
    feed(check, source.bump())
    assert (counters.gaps, counters.resyncs, counters.deltas, counters.snapshots) == (1, 1, 1, 2)


def test_a_new_epoch_is_a_resync_and_old_deltas_are_stale():
    check, counters, _ = checker()
    source = SourceBook.with_depth()
    feed(check, source.snapshot())
    old = source.bump()
    feed(check, old)
    feed(check, old)  # a duplicate
    assert counters.stale == 1
    source.new_epoch("e2")
    assert feed(check, source.bump()) == [{"op": "resync", "pair": "BTC-USD"}]
    assert (counters.epoch_changes, counters.gaps, counters.resyncs) == (1, 0, 1)


def test_an_unanswered_resync_is_repeated_after_a_while():
    check, counters, _ = checker()
    source = SourceBook.with_depth()
    feed(check, source.snapshot())
    source.bump()
    feed(check, source.bump(), now=NOW)
    assert feed(check, source.bump(), now=NOW + 1) == []
    assert feed(check, source.bump(), now=NOW + RESYNC_RETRY_NS) == [{"op": "resync", "pair": "BTC-USD"}]
    assert counters.resyncs == 2


def test_sampled_connections_verify_every_checksum():
    check, counters, _ = checker(verify=True)
    source = SourceBook.with_depth()
    feed(check, source.snapshot())
    for _ in range(4):
        feed(check, source.bump())
    assert (counters.verified, counters.checksum_failures) == (5, 0)
    assert check.tracks["BTC-USD"].book.book == source.book
    bad = dataclasses.replace(source.bump(), checksum=12345)
    assert feed(check, bad) == [{"op": "resync", "pair": "BTC-USD"}]
    assert (counters.checksum_failures, counters.resyncs) == (1, 1)


def test_unsampled_connections_do_not_look_at_checksums():
    check, counters, _ = checker(verify=False)
    source = SourceBook.with_depth()
    feed(check, source.snapshot())
    feed(check, dataclasses.replace(source.bump(), checksum=12345))
    assert (counters.deltas, counters.verified, counters.checksum_failures) == (1, 0, 0)


def test_pairs_are_tracked_apart_on_one_connection():
    check, counters, _ = checker(pairs=("BTC-USD", "ETH-USD"))
    btc, eth = SourceBook.with_depth("BTC-USD"), SourceBook.with_depth("ETH-USD", seq=7)
    feed(check, btc.snapshot(), eth.snapshot())
    feed(check, btc.bump(), eth.bump(), btc.bump())
    eth.bump()  # lost
    assert feed(check, eth.bump()) == [{"op": "resync", "pair": "ETH-USD"}]
    assert (counters.deltas, counters.gaps) == (3, 1)
    assert check.tracks["BTC-USD"].synced and not check.tracks["ETH-USD"].synced


def test_bad_frames_and_other_messages_never_raise():
    check, counters, _ = checker()
    check.on_frame(b"not json", NOW)
    check.on_frame(b'{"type":"delta"}', NOW)  # fields missing
    check.on_frame(b"[1, 2]", NOW)  # two messages, neither an object
    check.on_frame(b'{"type":"subscribed","pairs":["BTC-USD"],"id":1}', NOW)
    check.on_frame(b'{"type":"error","code":"x","message":"y","id":null}', NOW)
    check.on_frame(b'{"type":"future-thing"}', NOW)
    check.on_frame(b'{"type":"delta","pair":"SOL-USD","epoch":"e","seq":1,"ts":1,"xts":1}', NOW)  # not ours
    assert (counters.bad_frames, counters.acks, counters.errors, counters.deltas) == (4, 1, 1, 0)


def test_latency_before_the_message_time_is_counted_and_recorded_as_zero():
    check, counters, latencies = checker()
    source = SourceBook.with_depth()
    feed(check, source.snapshot())
    delta = source.bump()
    feed(check, delta, now=delta.xts - 5_000_000)  # the receiver's clock is behind
    assert counters.negative_latency == 1
    assert latencies.exchange.get_max_value() == 0
