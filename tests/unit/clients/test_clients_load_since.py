"""A load connection slot across reconnects: `since` positions, recovery, and the time to sync again."""

from __future__ import annotations

import orjson

from clients.load.checker import SUBSCRIBE_BUDGET, StreamChecker, subscribe_chunks
from clients.load.stats import ConnTimes, GroupTally, Latencies, LoadCounters
from mdcore.instruments import default_pairs
from mdcore.messages import Ack
from tests.unit.clients.scripted_server import SourceBook, encode

NOW = 10**18
MS = 1_000_000


def make(pairs=("BTC-USD", "ETH-USD"), verify=False):
    counters, times, tally = LoadCounters(), ConnTimes(), GroupTally()
    check = StreamChecker(pairs, counters, Latencies(), verify, times, tally)
    check.started_ns = NOW
    return check, counters, times, tally


def feed(check, *messages, now):
    payload = (
        b"[" + b",".join(encode(m) for m in messages) + b"]" if len(messages) > 1 else encode(messages[0])
    )
    check.on_frame(payload, now)
    return [orjson.loads(op) for op in check.take_ops()]


def synced(check, sources, now):
    ops = [orjson.loads(op) for op in check.subscribe_ops(now)]
    feed(check, Ack("subscribed", tuple(check.tracks), 1), *(s.snapshot() for s in sources), now=now)
    return ops


def test_the_first_sync_is_timed_from_the_first_attempt():
    check, counters, times, _ = make()
    sources = [SourceBook.with_depth(p) for p in check.tracks]
    ops = synced(check, sources[:1], NOW + 5 * MS)
    assert ops == [{"op": "subscribe", "pairs": ["BTC-USD", "ETH-USD"], "id": 1}]  # nothing to recover yet
    assert not check.synced and check.waiting == 1
    feed(check, sources[1].snapshot(), now=NOW + 30 * MS)
    assert check.synced and check.synced_ns == NOW + 30 * MS
    assert times.first_sync.get_total_count() == 1
    assert 29_000 <= times.first_sync.get_max_value() <= 31_000  # µs
    assert times.resync.get_total_count() == 0 and counters.resynced == 0


def test_a_reconnect_asks_with_since_and_a_recovered_answer_syncs_at_once():
    check, counters, times, _ = make(verify=True)
    sources = [SourceBook.with_depth(p) for p in check.tracks]
    synced(check, sources, NOW)
    for s in sources:
        feed(check, s.bump(), now=NOW + MS)
    check.connection_lost(NOW + 100 * MS)
    assert not check.synced and check.waiting == 2
    missed = [s.bump() for s in sources]  # published while the client was away
    ops = [orjson.loads(op) for op in check.subscribe_ops(NOW + 900 * MS)]
    assert ops == [
        {
            "op": "subscribe",
            "pairs": ["BTC-USD", "ETH-USD"],
            "id": 2,
            "since": {s.pair: {"epoch": "e1", "seq": 101} for s in sources},
        }
    ]
    answer = Ack("subscribed", ("BTC-USD", "ETH-USD"), 2, True)
    assert feed(check, answer, *missed, now=NOW + 1000 * MS) == []
    assert check.synced and counters.recovered_answers == 1 and counters.since_subscribes == 1
    assert (counters.deltas, counters.gaps, counters.checksum_failures, counters.snapshots) == (4, 0, 0, 2)
    assert counters.verified == 6  # the books went on from where they were: replayed deltas verify
    assert times.resync.get_total_count() == 1 and counters.resynced == 1
    assert 899_000 <= times.resync.get_max_value() <= 901_000  # µs from the drop to synced again
    assert times.subscribed.get_total_count() == 2  # the first subscribe and the one with since
    assert 99_000 <= times.subscribed.get_max_value() <= 101_000  # µs from that subscribe to synced


def test_a_pair_not_recovered_syncs_with_its_snapshot_one_recovered_with_its_next_delta():
    check, counters, times, _ = make()
    btc, eth = (SourceBook.with_depth(p) for p in check.tracks)
    synced(check, [btc, eth], NOW)
    check.connection_lost(NOW + MS)
    check.subscribe_ops(NOW + 2 * MS)
    feed(check, Ack("subscribed", ("BTC-USD", "ETH-USD"), 2, False), btc.bump(), now=NOW + 3 * MS)
    assert counters.recovery_misses == 1 and check.waiting == 1  # BTC continued; ETH waits for its snapshot
    eth.new_epoch("e2", 40)
    feed(check, eth.snapshot(), now=NOW + 50 * MS)
    assert check.synced and counters.resynced == 1
    assert 48_000 <= times.resync.get_max_value() <= 50_000
    assert (counters.gaps, counters.epoch_changes) == (0, 0)


def test_a_connection_lost_before_it_ever_synced_is_still_on_its_first_sync():
    check, _, times, _ = make(pairs=("BTC-USD",))
    check.subscribe_ops(NOW)
    check.connection_lost(NOW + MS)
    assert check.lost_ns is None
    ops = [orjson.loads(op) for op in check.subscribe_ops(NOW + 2 * MS)]
    assert "since" not in ops[0]
    feed(check, SourceBook.with_depth().snapshot(), now=NOW + 10 * MS)
    assert times.first_sync.get_total_count() == 1 and times.resync.get_total_count() == 0


def test_a_gap_while_synced_makes_the_connection_wait_again():
    check, _, _, tally = make(pairs=("BTC-USD",))
    source = SourceBook.with_depth()
    synced(check, [source], NOW)
    source.bump()  # lost
    assert feed(check, source.bump(), now=NOW + MS) == [{"op": "resync", "pair": "BTC-USD"}]
    assert check.waiting == 1
    feed(check, source.snapshot(), now=NOW + 2 * MS)
    assert check.synced and tally.frames == 3 and tally.deltas == 0


def test_many_pairs_with_positions_split_into_requests_under_the_frame_limit():
    pairs = default_pairs(200)
    positions = {p: {"epoch": "7f3a9c", "seq": 123456} for p in pairs}
    chunks = subscribe_chunks(pairs, positions)
    assert len(chunks) > 1
    assert [p for names, _ in chunks for p in names] == pairs
    for names, since in chunks:
        op = orjson.dumps({"op": "subscribe", "pairs": names, "id": 99, "since": since})
        assert len(op) <= SUBSCRIBE_BUDGET and set(since) == set(names)
    assert subscribe_chunks(["BTC-USD"], {}) == [(["BTC-USD"], {})]
    check, *_ = make(pairs=pairs)
    ops = [orjson.loads(op) for op in check.subscribe_ops(NOW)]
    assert [p for op in ops for p in op["pairs"]] == pairs and len({op["id"] for op in ops}) == len(ops)
    assert all(len(orjson.dumps(op)) <= SUBSCRIBE_BUDGET for op in ops)
