"""``bookcast load`` set-up with plain calls: settings, layout, limits, histograms and the report."""

from __future__ import annotations

import resource
from collections import Counter

import orjson
import pytest

from clients.load.cli import check_limits, main
from clients.load.config import (
    LoadConfig,
    build_parser,
    http_url,
    load_config,
    pairs_for,
    plan_workers,
    verifies,
)
from clients.load.limits import FdLimit, ephemeral_ports, needed_per_process, raise_fd_limit
from clients.load.report import LoadReport, WorkerResult, progress_line
from clients.load.stats import Latencies, LoadCounters
from mdcore.settings import SettingError

ENV = {"BOOKCAST_URL": "ws://127.0.0.1:9/ws"}


def config(*argv, env=ENV):
    return load_config(build_parser().parse_args(list(argv)), env)


def test_defaults_and_flags():
    cfg = config()
    assert cfg.urls == ("ws://127.0.0.1:9/ws",)
    assert (cfg.connections, cfg.pairs_per_connection, cfg.pairs, cfg.pool, cfg.duration) == (
        100,
        1,
        None,
        None,
        10.0,
    )
    cfg = config(
        "--url", "ws://a:1/ws,ws://b:2/ws", "--url", "ws://c:3/ws", "--connections", "7", "--pairs", "3",
        "--pool", "5", "--duration", "2.5", "--processes", "3", "--ramp", "100", "--verify-sample", "0.5",
        "--json", "x.json",
    )  # fmt: skip
    assert cfg.urls == ("ws://a:1/ws", "ws://b:2/ws", "ws://c:3/ws")
    assert (cfg.connections, cfg.pairs_per_connection, cfg.duration, cfg.processes) == (7, 3, 2.5, 3)
    assert cfg.pool == ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD")
    assert (cfg.ramp, cfg.verify_sample, cfg.json_report, cfg.worker_count) == (100.0, 0.5, "x.json", 3)
    listed = config("--pairs", "BTC-USD,ETH-USD")
    assert (listed.pairs, listed.pairs_per_connection) == (("BTC-USD", "ETH-USD"), 2)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--url", "http://x/ws"], "--url"),
        (["--connections", "0"], "--connections"),
        (["--pairs", "NOPE-USD"], "unknown pair"),
        (["--pairs", "0"], "--pairs"),
        (["--duration", "0"], "--duration"),
        (["--verify-sample", "2"], "--verify-sample"),
        (["--ramp", "-1"], "--ramp"),
    ],
)
def test_bad_settings_name_the_flag(argv, fragment):
    with pytest.raises(SettingError, match=fragment):
        config(*argv)


def test_every_pair_gets_its_share_of_subscribers():
    pool = ("A-1", "B-2", "C-3", "D-4", "E-5")
    subscribers = Counter(p for i in range(100) for p in pairs_for(i, pool, 2))
    assert set(subscribers.values()) == {40}
    assert pairs_for(0, pool, 2) == ("A-1", "B-2")
    assert pairs_for(2, pool, 2) == ("E-5", "A-1")
    with pytest.raises(SettingError, match="more than the 5 pairs"):
        pairs_for(0, pool, 6)


def test_a_sample_of_connections_verifies_the_first_always():
    chosen = [i for i in range(1000) if verifies(i, 0.02)]
    assert chosen[:3] == [0, 50, 100] and len(chosen) == 20
    assert [i for i in range(10) if verifies(i, 0.0)] == [0]
    assert all(verifies(i, 1.0) for i in range(10))


def test_connections_are_dealt_over_processes_and_urls():
    cfg = LoadConfig(urls=("ws://a:1/ws", "ws://b:2/ws"), connections=7, pairs_per_connection=1, processes=3)
    plans = plan_workers(cfg, ("BTC-USD", "ETH-USD"))
    assert [len(p.specs) for p in plans] == [3, 2, 2]
    specs = sorted((s for p in plans for s in p.specs), key=lambda s: s.index)
    assert [s.url[5] for s in specs] == list("ababab" + "a")
    assert [s.pairs for s in specs[:3]] == [("BTC-USD",), ("ETH-USD",), ("BTC-USD",)]
    assert LoadConfig(urls=("ws://a:1/ws",), connections=2, processes=8).worker_count == 2


def test_source_addresses_are_dealt_round_robin():
    cfg = config("--connections", "5", "--source", "127.0.0.1,127.0.0.2", "--pool", "2", "--processes", "1")
    assert cfg.sources == ("127.0.0.1", "127.0.0.2")
    specs = plan_workers(cfg, cfg.pool)[0].specs
    assert [s.source for s in specs] == ["127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.2", "127.0.0.1"]
    assert plan_workers(config("--connections", "2", "--pool", "2"), ("BTC-USD",))[0].specs[0].source is None
    with pytest.raises(SettingError, match="--source"):
        config("--source", "localhost")


def test_http_url_follows_the_websocket_url():
    assert http_url("ws://127.0.0.1:8765/ws", "/pairs") == "http://127.0.0.1:8765/pairs"
    assert http_url("wss://example.com/ws", "/pairs") == "https://example.com:443/pairs"


def test_the_soft_open_files_limit_is_raised_towards_what_is_needed():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(soft, 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        limit = raise_fd_limit(1000)
        assert limit.soft_before == lowered
        assert limit.soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= min(1000, hard)
        assert limit.enough
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert needed_per_process(10_000, 4) == 2_500 + 64


def test_a_hard_limit_too_low_is_explained_and_stops_the_command(monkeypatch, capsys):
    limit = FdLimit(needed=50_064, soft_before=1024, soft=4096, hard=4096)
    assert not limit.enough
    text = limit.explain(100_000, 2)
    assert "50,064" in text and "4,096" in text and "ulimit -Hn" in text and "LimitNOFILE" in text
    monkeypatch.setattr("clients.load.cli.raise_fd_limit", lambda needed: limit)
    assert not check_limits(LoadConfig(urls=("ws://a:1/ws",), connections=100_000), 2)
    assert "hard limit" in capsys.readouterr().err


def test_the_ephemeral_port_range_is_read(tmp_path):
    path = tmp_path / "range"
    path.write_text("32768\t60999\n")
    assert ephemeral_ports(path) == 28_232
    assert ephemeral_ports(tmp_path / "missing") is None


def _report(busy=0.2):
    latencies = Latencies()
    for v in (1000, 2000, 3000):
        latencies.window.record_value(v)
        latencies.exchange.record_value(v * 10)
    counters = {
        "frames": 500,
        "bytes": 50_000,
        "messages": 600,
        "deltas": 590,
        "snapshots": 10,
        "connects": 5,
    }
    workers = [WorkerResult(w, LoadCounters(**counters), 5.0, 5.0 * busy, 5, 5, 0.3) for w in range(2)]
    return LoadReport(["ws://a:1/ws"], 10, 2, 5.0, workers, latencies, 1)


def test_the_report_has_rates_percentiles_and_counts():
    body = orjson.loads(orjson.dumps(_report().as_dict()))
    assert (body["frames"], body["frames_per_s"], body["messages_per_s"]) == (1000, 200.0, 240.0)
    assert body["bytes_per_s"] == 20_000.0
    assert body["latency_ms"]["window_to_receipt"]["count"] == 3
    assert body["latency_ms"]["exchange_to_receipt"]["p50_ms"] == pytest.approx(20.0, rel=0.01)
    assert (body["gaps"], body["disconnects"], body["connected_at_end"], body["processes"]) == (0, 0, 10, 2)
    assert body["all_connected_after_s"] == 0.3
    assert body["generator_saturated"] is False
    text = "\n".join(_report().table())
    assert "p99.9" in text and "frames" in text and "WARNING" not in text


def test_a_busy_generator_is_flagged():
    report = _report(busy=0.97)
    assert report.as_dict()["generator_saturated"] is True
    assert any("generator's limit" in line for line in report.table())


def test_progress_line():
    now, before = LoadCounters(frames=300, bytes=2_000_000, gaps=1), LoadCounters(frames=100)
    interval = Latencies()
    interval.window.record_value(4_000)
    interval.exchange.record_value(90_000)
    line = progress_line(4.0, 9, 10, now, before, 2.0, interval)
    assert "9/10 open" in line and "100 frames/s" in line and "1.00 MB/s" in line and "gaps 1" in line
    assert "p99 window 4.0 ms" in line


def test_the_command_refuses_bad_settings_and_an_unreachable_pool(capsys):
    assert main(["--connections", "0"]) == 2
    assert "--connections" in capsys.readouterr().err
    assert main(["--url", "ws://127.0.0.1:9/ws", "--duration", "1"]) == 2  # nothing listens there
    assert "give --pool" in capsys.readouterr().err
