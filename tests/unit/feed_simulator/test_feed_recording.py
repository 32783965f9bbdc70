"""Record a run, read it back, replay it: the same messages in the same order, at a chosen speed."""

import dataclasses
import logging
import time

import orjson
import pytest

from feed_simulator.config import FeedConfig, parse_config
from feed_simulator.faults import FaultRates
from feed_simulator.market import MarketParams
from feed_simulator.producer import pump
from feed_simulator.recording import RecordingError, RecordingReader
from feed_simulator.replay import replay, restamp, shifted_xts
from mdcore.settings import SettingError
from tests.unit.feed_simulator.feed_fakes import FakeProducer

PAIRS = ("BTC-USD", "XRP-USD", "SYN002-USD")
PARAMS = MarketParams(max_levels=40)
NO_FAULTS = FaultRates()


def record(path, events=1_500, rate=1e9, faults=NO_FAULTS, scenario="hot-pair"):
    cfg = FeedConfig(
        "unused:1",
        topic="t",
        pairs=PAIRS,
        rate=rate,
        seed=21,
        scenario=scenario,
        faults=faults,
        record=str(path),
    )
    producer = FakeProducer()
    report = pump(cfg, producer, max_events=events, params=PARAMS)
    return report, [(key, value) for _, key, value in producer.produced]


def replayed(path, speed=0.0, **kwargs):
    cfg = FeedConfig("unused:1", topic="t2", replay=str(path), speed=speed)
    producer = FakeProducer()
    report = replay(cfg, producer, **kwargs)
    return report, [(key, value) for _, key, value in producer.produced]


def without_xts(messages):
    return [(key, restamp(value, 0)) for key, value in messages]


@pytest.mark.parametrize("name", ["run.rec", "run.rec.gz"])
def test_a_recording_holds_every_message_sent_in_order(tmp_path, name):
    path = tmp_path / name
    faults = FaultRates(duplicate=0.02, redelivery=0.02, malformed=0.02)
    report, sent = record(path, faults=faults)
    with RecordingReader(path) as reader:
        records = list(reader)
        assert reader.header["seed"] == 21
        assert reader.header["scenario"] == "hot-pair"
        assert reader.header["pairs"] == list(PAIRS)
        assert reader.trailer["messages"] == len(sent) == len(records)
        assert reader.trailer["events"] == report.produced_events == 1_500
        assert reader.trailer["changes"] == report.delivered_changes
    assert [(r.key, r.value) for r in records] == sent
    offsets = [r.offset_ns for r in records]
    assert offsets == sorted(offsets)
    kinds = {r.kind for r in records if r.kind is not None}
    assert kinds == {"duplicate", "redelivery", "malformed"}
    assert sum(r.changes for r in records) == report.delivered_changes


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


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"hello\n", "not a bookcast feed recording"),
        (b"#bookcast-feed-recording 9 {}\n", "version '9'"),
        (b"#bookcast-feed-recording 1 {}\n12\tBTC-USD\n", ":2: not a recorded message"),
    ],
)
def test_damaged_files_are_refused_with_the_place(tmp_path, content, fragment):
    path = tmp_path / "bad.rec"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=fragment):
        replayed(path)


def test_replay_settings_are_checked(tmp_path):
    env = {"KAFKA_BOOTSTRAP": "h:1"}
    path = tmp_path / "run.rec"
    path.write_bytes(b"")
    with pytest.raises(SettingError, match="no such file"):
        parse_config(["--replay", str(tmp_path / "missing.rec")], env)
    with pytest.raises(SettingError, match="cannot be combined"):
        parse_config(["--replay", str(path), "--record", str(tmp_path / "x.rec")], env)
    with pytest.raises(SettingError, match="record the faults instead"):
        parse_config(["--replay", str(path), "--duplicate-rate", "0.1"], env)
    with pytest.raises(SettingError, match="one process"):
        parse_config(["--record", str(path), "--processes", "2"], env)
    with pytest.raises(SettingError, match="--speed"):
        parse_config(["--replay", str(path), "--speed", "-1"], env)
    cfg = parse_config(["--replay", str(path), "--speed", "2.5"], env)
    assert dataclasses.astuple(cfg)  # a plain frozen config
    assert (cfg.replay, cfg.speed) == (str(path), 2.5)


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
