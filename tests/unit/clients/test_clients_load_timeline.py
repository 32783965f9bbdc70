"""``bookcast load --timeline``: one JSON line per round, read back whole or as it grows."""

from __future__ import annotations

import orjson

from clients.load import cli
from clients.load.config import build_parser, load_config
from clients.load.stats import ConnTimes, GroupTally, Latencies, LoadCounters
from clients.load.timeline import Timeline, TimelineReader, read_rounds


def test_each_round_of_the_workers_is_one_line(tmp_path, monkeypatch) -> None:
    path = tmp_path / "t.jsonl"
    args = ["--url", "ws://127.0.0.1:1/ws", "--pool", "2", "--connections", "4", "--processes", "2"]
    cfg = load_config(build_parser().parse_args([*args, "--timeline", str(path), "--quiet"]), {})
    assert cfg.timeline == str(path)
    clock = [100.0]
    monkeypatch.setattr(cli.time, "monotonic", lambda: clock[0])
    timeline = Timeline.open(str(path))
    progress = cli._Progress(cfg, 100.0, None, timeline)
    reader = TimelineReader(path)
    for second in (1, 2):
        clock[0] = 100.0 + second
        for worker in (0, 1):
            latencies, times = Latencies(), ConnTimes()
            latencies.record_ns(20_000_000, 2_000_000 * (worker + 1))
            ConnTimes.record(times.resync, 1_500_000_000)
            progress.add(worker, {
                "counters": LoadCounters(frames=10 * second, resynced=worker).as_dict(), "open": 2,
                "latencies": latencies.encode(), "times": times.encode(), "synced": second,
                "synced_ns": 1_000 * second + worker,
                "groups": {"drawn": GroupTally(2, 10 * second, 5 * second).as_dict()},
            })  # fmt: skip
        assert len(reader.poll()) == 1
    timeline.close()
    rounds = read_rounds(path)
    assert rounds == reader.rounds and len(rounds) == 2
    last = rounds[-1]
    assert (last["open"], last["synced"], last["connections"], last["synced_ns"]) == (4, 4, 4, 2_001)
    assert last["counters"]["frames"] == 40 and last["counters"]["resynced"] == 1
    assert last["groups"] == {"drawn": {"connections": 4, "frames": 40, "deltas": 20, "open": 0}}
    merged = Latencies()
    merged.add_encoded({k: v.encode() for k, v in last["latencies"].items()})
    assert merged.window.get_total_count() == 2  # this round's only, not the run's
    times = ConnTimes()
    times.add_encoded({k: v.encode() for k, v in last["times"].items()})
    assert times.resync.get_total_count() == 2


def test_a_half_written_line_waits_for_the_next_poll(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    reader = TimelineReader(path)
    assert reader.poll() == []  # no file yet
    path.write_bytes(orjson.dumps({"t": 1}) + b"\n" + b'{"t": ')
    assert reader.poll() == [{"t": 1}]
    with path.open("ab") as f:
        f.write(b"2}\n")
    assert reader.poll() == [{"t": 2}] and len(reader.rounds) == 2
