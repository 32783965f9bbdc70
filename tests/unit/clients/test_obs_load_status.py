"""The load generator's status on the bus: rates of the round, latency in the shared buckets."""

from __future__ import annotations

from clients.load.config import build_parser, load_config, plan_workers
from clients.load.stats import Latencies, LoadCounters
from clients.load.status import from_hdr, load_status
from mdcore.status_bus import block_histogram


def test_hdr_histograms_convert_into_the_bus_layout() -> None:
    pair = Latencies()
    for ms in (1, 2, 3, 50):
        pair.record_ns(ms * 1_000_000 + 10_000_000, ms * 1_000_000)
    hist = from_hdr(pair.window)
    assert hist.count == 4 and 50_000 <= hist.highest() <= 50_100
    assert 2_000 <= hist.percentile(50) <= 2_050


def test_status_of_a_round() -> None:
    before = LoadCounters(frames=100, deltas=90, resyncs=1)
    now = LoadCounters(frames=300, deltas=290, resyncs=2, gaps=1, messages=310)
    interval = Latencies()
    interval.record_ns(25_000_000, 4_000_000)
    status = load_status("load-a", 1_000, 2.0, now, before, 48, 50, interval)
    assert status["kind"] == "load" and status["id"] == "load-a" and status["v"] == 1
    assert status["rates"]["frames_per_s"] == 100.0 and status["rates"]["deltas_per_s"] == 100.0
    assert status["rates"]["resyncs_per_s"] == 0.5 and status["totals"]["gaps"] == 1
    assert status["open"] == 48 and status["connections"] == 50
    close = block_histogram(status["latency"]["close_to_client"])
    exchange = block_histogram(status["latency"]["exchange_to_client"])
    assert close.count == 1 and 4_000 <= close.percentile(50) <= 4_070
    assert 25_000 <= exchange.percentile(50) <= 25_400


def test_a_redis_url_turns_the_status_on_and_workers_report_every_second() -> None:
    args = ["--url", "ws://127.0.0.1:1/ws", "--pool", "2", "--connections", "2", "--processes", "1"]
    off = load_config(build_parser().parse_args(args), {})
    assert off.redis_url is None and plan_workers(off, ("BTC-USD",))[0].interval == 2.0
    on = load_config(
        build_parser().parse_args([*args, "--redis-url", "redis://h:1/0", "--status-id", "x"]), {}
    )
    assert (
        on.redis_url == "redis://h:1/0"
        and on.status_id == "x"
        and plan_workers(on, ("BTC-USD",))[0].interval == 1.0
    )
    env = {"REDIS_URL": "redis://e:2/0", "BOOKCAST_REDIS_PREFIX": "bc", "BOOKCAST_STATUS_BUS_S": "0.5"}
    from_env = load_config(build_parser().parse_args(args), env)
    assert (from_env.redis_url, from_env.redis_prefix, from_env.report_interval) == (
        "redis://e:2/0",
        "bc",
        0.5,
    )


def test_rounds_publish_every_second_while_lines_keep_their_interval(monkeypatch, capsys) -> None:
    from clients.load import cli

    args = ["--url", "ws://127.0.0.1:1/ws", "--pool", "2", "--connections", "2", "--processes", "1"]
    cfg = load_config(
        build_parser().parse_args([*args, "--redis-url", "redis://h:1/0", "--status-id", "x"]), {}
    )
    published: list[dict] = []

    class FakePublisher:
        instance = "x"

        def publish(self, status: dict) -> None:
            published.append(status)

    clock = [100.0]
    monkeypatch.setattr(cli.time, "monotonic", lambda: clock[0])
    progress = cli._Progress(cfg, 100.0, FakePublisher())  # type: ignore[arg-type]
    for second in range(1, 5):
        clock[0] = 100.0 + second
        latencies = Latencies()
        latencies.record_ns(20_000_000, 2_000_000)
        payload = {
            "counters": LoadCounters(frames=10 * second).as_dict(),
            "open": 2,
            "latencies": latencies.encode(),
        }
        progress.add(0, payload)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(published) == 4 and len(lines) == 2  # --progress-interval 2 s, statuses every second
    assert all(s["rates"]["frames_per_s"] == 10.0 for s in published)
    assert all(s["latency"]["close_to_client"]["count"] == 1 for s in published)


def test_an_unreachable_redis_costs_one_attempt_per_retry_period(caplog) -> None:
    from clients.load.status import StatusPublisher

    publisher = StatusPublisher("redis://127.0.0.1:1/0", "bc", "x", 1.0)  # nothing listens on port 1
    for _ in range(5):
        publisher.publish({"v": 1})
    assert publisher.errors == 1 and publisher.published == 0
    assert "status bus" in caplog.text
    publisher.close()
