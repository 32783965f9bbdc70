"""Replaying a recording: the same messages in the same order, exchange times moved to the replay.

The pace test measures wall time (a replay at a speed is a pace).
"""

import logging
import time
from collections import Counter
from itertools import pairwise

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from feed_simulator.config import FeedConfig
from feed_simulator.faults import FaultRates
from feed_simulator.replay import replay, restamp, shifted_xts
from mdcore.partitioning import KeyPartitions
from tests.unit.feed_simulator.feed_fakes import FakeProducer
from tests.unit.feed_simulator.feed_recordings import record, replayed, without_xts


def test_restamp_replaces_only_the_first_exchange_time():
    value = b'{"pair":"BTC-USD","xts":5000,"note":{"xts":6000}}'
    assert restamp(value, 42) == b'{"pair":"BTC-USD","xts":42,"note":{"xts":6000}}'
    assert restamp(b'{"pair":"BTC-USD"}', 42) == b'{"pair":"BTC-USD"}'
    assert restamp(b"\x00garbage", 42) == b"\x00garbage"  # a malformed fault goes out as it was


@given(
    offsets=st.lists(st.integers(0, 10**12), min_size=2, max_size=20),
    speed=st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0, 10.0]),
)
def test_shifted_exchange_times_keep_their_order_and_scale_their_spacing(offsets, speed):
    recorded_start, replay_start = 1_700_000_000_000_000_000, 1_800_000_000_000_000_000
    recorded = [recorded_start + offset for offset in sorted(offsets)]
    moved = [
        orjson.loads(shifted_xts(b'{"xts":%d,"seq":1}' % xts, recorded_start, replay_start, speed))["xts"]
        for xts in recorded
    ]
    assert moved == sorted(moved)
    assert moved[0] == replay_start + int(sorted(offsets)[0] / speed)
    for (a, b), (x, y) in zip(pairwise(recorded), pairwise(moved), strict=True):
        assert y - x == pytest.approx((b - a) / speed, abs=1)


class PartitionRecorder(FakeProducer):
    """A FakeProducer that also remembers which partition each message was sent to."""

    def __init__(self):
        super().__init__()
        self.partitions = []

    def produce(self, topic, value, key, partition, on_delivery):
        super().produce(topic, value, key, partition, on_delivery)
        self.partitions.append((key, partition))


def test_each_message_goes_to_its_keys_partition_and_faults_are_counted_apart(tmp_path):
    path = tmp_path / "run.rec"
    _, sent = record(path, events=400, faults=FaultRates(duplicate=0.05, malformed=0.05), scenario="steady")
    producer = PartitionRecorder()
    report = replay(FeedConfig("unused:1", topic="t", replay=str(path), partitions=5), producer)
    home = KeyPartitions(5)
    assert producer.partitions and all(p == home[key] for key, p in producer.partitions)
    assert len(producer.produced) == len(sent)
    assert report.produced_events == report.delivered_events == 400
    assert sum(report.injected.values()) == len(sent) - 400 == report.injected_delivered
    assert set(report.injected) == {"duplicate", "malformed"}
    assert Counter(topic for topic, _, _ in producer.produced) == {"t": len(sent)}


def test_an_unconfirmed_tail_is_reported_as_undelivered(tmp_path):
    path = tmp_path / "run.rec"
    record(path, events=50, scenario="steady")
    cfg = FeedConfig("unused:1", topic="t", replay=str(path))
    producer = FakeProducer(lose_on_flush=4)
    report = replay(cfg, producer)
    assert report.produced_events == 50
    assert (report.delivered_events, report.undelivered_events) == (46, 4)


# --- replays of a recorded run ----------------------------------------------------------------


def test_a_replay_sends_the_same_messages_and_counts_the_same(tmp_path):
    path = tmp_path / "run.rec"
    original, sent = record(path, faults=FaultRates(duplicate=0.02, redelivery=0.02, malformed=0.02))
    before = time.time_ns()
    again, resent = replayed(path)
    assert without_xts(resent) == without_xts(sent)
    assert (again.produced_events, again.delivered_changes) == (1_500, original.delivered_changes)
    assert {k: v for k, v in again.injected.items()} == {
        k: v for k, v in original.injected.items() if ":" not in k
    }
    assert (again.mode, again.scenario, again.seed) == ("replay", "hot-pair", 21)
    # At full speed every exchange time is the send time.
    stamps = [orjson.loads(v)["xts"] for _, v in resent[:50] if v.startswith(b'{"pair"')]
    assert all(before <= xts <= time.time_ns() for xts in stamps)


def test_replays_keep_the_recorded_pace_scaled_by_speed(tmp_path):
    path = tmp_path / "paced.rec"
    record(path, events=200, rate=500.0, scenario="steady")  # ~0.4 s of traffic
    started = time.monotonic()
    report, fast = replayed(path, speed=4.0)
    quick = time.monotonic() - started
    started = time.monotonic()
    _, slow = replayed(path, speed=1.0)
    real = time.monotonic() - started
    assert len(fast) == len(slow) == 200 == report.produced_events
    assert real >= 0.38
    assert 0.09 <= quick < real / 2
    assert report.requested_rate == pytest.approx(2000.0)  # the recorded 500/s, four times over

    # Exchange times move with the replay: in order, spaced a quarter of the recorded spacing.
    def spacing(messages):
        xts = [orjson.loads(v)["xts"] for _, v in messages]
        assert xts == sorted(xts)
        return (xts[-1] - xts[0]) / 1e9

    assert spacing(fast) == pytest.approx(spacing(slow) / 4, rel=0.05)


def test_shifting_exchange_times():
    value = b'{"pair":"BTC-USD","xseq":3,"xts":5000,"changes":[]}'
    assert shifted_xts(value, 1000, 10_000, 2.0) == value.replace(b"5000", b"12000")
    assert shifted_xts(b"not json", 1, 2, 1.0) == b"not json"
    assert restamp(value, 7) == value.replace(b"5000", b"7")


def test_max_events_cuts_a_replay_short(tmp_path):
    path = tmp_path / "run.rec"
    record(path, events=300, scenario="steady")
    report, messages = replayed(path, max_events=120)
    assert report.produced_events == len(messages) == 120


def test_a_cut_short_recording_is_replayed_with_a_warning(tmp_path, caplog):
    path = tmp_path / "run.rec"
    record(path, events=100, scenario="steady")
    lines = path.read_bytes().splitlines(keepends=True)
    cut = tmp_path / "cut.rec"
    cut.write_bytes(b"".join(lines[:51]) + lines[51][:30])  # header, 50 events, half a line
    with caplog.at_level(logging.WARNING, logger="feed_simulator.replay"):
        report, messages = replayed(cut)
    assert len(messages) == report.produced_events == 50
    assert "cut short" in caplog.text


def test_a_cut_short_gzip_recording_is_replayed_up_to_the_cut(tmp_path):
    path = tmp_path / "run.rec.gz"
    record(path, events=2_000, scenario="steady")
    data = path.read_bytes()
    cut = tmp_path / "cut.rec.gz"
    cut.write_bytes(data[: len(data) // 2])
    report, messages = replayed(cut)
    assert 0 < len(messages) == report.produced_events < 2_000
    for _, value in messages:
        orjson.loads(value)  # no half message went out
