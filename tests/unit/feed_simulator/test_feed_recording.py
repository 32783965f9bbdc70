"""Record a run and read it back: every message sent, in order, with its header and trailer.

Replaying a recording is test_feed_replay.py.
"""

import dataclasses

import pytest

from feed_simulator.config import parse_config
from feed_simulator.faults import FaultRates
from feed_simulator.recording import RecordingError, RecordingReader
from mdcore.settings import SettingError
from tests.unit.feed_simulator.feed_recordings import PAIRS, record, replayed


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
