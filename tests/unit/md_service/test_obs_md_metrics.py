"""md_service's exporter and status, read from the service: every documented name, real values.

No Kafka or Redis: the real :class:`MdService` on a scripted source whose consumer is a fake
with librdkafka's bookkeeping calls (its scripted store is never called), the Redis client of
the status publisher a recorder.
"""

from __future__ import annotations

import logging
import socket
import urllib.request
from dataclasses import dataclass
from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from md_service.config import MdConfig
from md_service.counters import WindowLatency
from md_service.metrics import MdMetrics, MetricsConfig, consumer_lag, load_metrics_config
from md_service.service import MdService
from md_service.status import StatusConfig, StatusPublisher, load_status_config
from mdcore.codec import encode_delta
from mdcore.messages import Delta
from mdcore.status_bus import decode_status
from tests.unit.md_service.md_fakes import ScriptedSource, ScriptedStore

NOW_NS = 1_700_000_000_000_000_000


@dataclass
class TP:
    partition: int
    offset: int


class FakeConsumer:
    """position/assignment/cached watermarks as librdkafka keeps them; the uncached call must not be used."""

    def __init__(self, positions: dict[int, int], highs: dict[int, int]) -> None:
        self.positions, self.highs = positions, highs

    def assignment(self) -> list[TP]:
        return [TP(p, -1001) for p in self.positions]

    def position(self, tps: list[TP]) -> list[TP]:
        return [TP(tp.partition, self.positions[tp.partition]) for tp in tps]

    def get_watermark_offsets(self, tp: TP, cached: bool = False) -> tuple[int, int]:
        assert cached, "Tansu answers the uncached query wrongly: use the watermark of the last fetch"
        return 0, self.highs[tp.partition]


def md_service(source: ScriptedSource) -> MdService:
    """The real service on ``source``; nothing here calls its store (a call would fail the test)."""
    return MdService(
        MdConfig("", "", instance="md-host-1"), ScriptedStore(), lambda on_assign, on_revoke: source
    )


def output(close_ms_ago: float, window_ms: float, delta: bool = True) -> SimpleNamespace:
    ts = NOW_NS - int(close_ms_ago * 1e6)
    raw = encode_delta(Delta("BTC-USD", "e1", 1, ts, ts - int(window_ms * 1e6), [["1.00", "2"]], [], 1))
    return SimpleNamespace(delta=raw if delta else b"")


def busy_service() -> tuple[MdService, WindowLatency]:
    service = md_service(
        ScriptedSource(consumer=FakeConsumer({0: 90, 1: 10, 2: -1001}, {0: 100, 1: 10, 2: 7}))
    )
    c = service.counters
    c.events_applied, c.events_duplicate, c.events_late, c.level_changes = 1000, 3, 1, 4700
    c.windows, c.deltas, c.snapshots, c.published_bytes = 40, 120, 12, 90_000
    c.count_invalid("not_json")
    c.count_invalid("not_json")
    c.count_invalid("bad_price")
    service.ownership.own([0, 1, 5], "tok")
    service.ownership.mark_fenced(5)
    latency = c.latency
    latency.written(
        [output(2, 80), output(4, 60), output(0, 0, delta=False), SimpleNamespace(delta=b"?")], NOW_NS
    )
    return service, latency


def samples(text: bytes) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_the_exporter_publishes_every_documented_name_with_the_services_values() -> None:
    service, _ = busy_service()
    got = samples(MdMetrics().bind(service).render())
    assert got[("bookcast_md_events_total", (("outcome", "applied"),))] == 1000
    assert got[("bookcast_md_events_total", (("outcome", "duplicate"),))] == 3
    assert got[("bookcast_md_events_total", (("outcome", "invalid"),))] == 3
    assert got[("bookcast_md_invalid_events_total", (("kind", "not_json"),))] == 2
    assert got[("bookcast_md_windows_total", ())] == 40 and got[("bookcast_md_deltas_total", ())] == 120
    assert got[("bookcast_md_level_changes_total", ())] == 4700
    assert got[("bookcast_md_redis_up", ())] == 1 and got[("bookcast_md_partitions", ())] == 2
    assert got[("bookcast_md_partitions_following", ())] == 1
    assert got[("bookcast_md_consumer_lag", (("partition", "0"),))] == 10
    assert got[("bookcast_md_consumer_lag", (("partition", "1"),))] == 0
    assert ("bookcast_md_consumer_lag", (("partition", "2"),)) not in got  # nothing consumed yet: unknown
    assert got[("bookcast_md_exchange_to_close_seconds_count", ())] == 2
    assert got[("bookcast_md_exchange_to_close_seconds_bucket", (("le", "0.075"),))] == 1  # 60 ms
    assert got[("bookcast_md_exchange_to_close_seconds_bucket", (("le", "0.1"),))] == 2  # and 80 ms
    assert got[("bookcast_md_window_publish_seconds_bucket", (("le", "0.0025"),))] == 1  # 2 ms
    assert got[("bookcast_md_window_publish_seconds_bucket", (("le", "0.005"),))] == 2  # and 4 ms
    assert abs(got[("bookcast_md_window_publish_seconds_sum", ())] - 0.006) < 1e-9
    assert ("process_resident_memory_bytes", ()) in got
    service.redis_down_since = 1.0
    service.source = ScriptedSource()  # a source without a Kafka consumer: no lag figure, no failure
    got = samples(MdMetrics().bind(service).render())
    assert got[("bookcast_md_redis_up", ())] == 0
    assert not any(name == "bookcast_md_consumer_lag" for name, _ in got)


def test_consumer_lag_survives_a_closed_consumer() -> None:
    class Closed:
        def assignment(self) -> list:
            raise RuntimeError("Consumer closed")

    assert consumer_lag(md_service(ScriptedSource(consumer=Closed()))) is None


def test_settings() -> None:
    assert load_metrics_config({}) == MetricsConfig("127.0.0.1", 9101)
    assert load_metrics_config({"BOOKCAST_MD_METRICS_PORT": "0"}).port == 0
    assert load_status_config({}) == StatusConfig(1.0)
    assert load_status_config({"BOOKCAST_STATUS_BUS_S": "0"}).interval_s == 0


def test_exporter_serves_its_port_and_a_taken_port_is_a_warning(caplog) -> None:
    service, _ = busy_service()
    metrics = MdMetrics().bind(service)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert metrics.serve(MetricsConfig("127.0.0.1", port)) and metrics.port == port
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert b"bookcast_md_deltas_total 120.0" in body
        with caplog.at_level(logging.WARNING):
            assert not MdMetrics().serve(MetricsConfig("127.0.0.1", port))
        assert "running without /metrics" in caplog.text
    finally:
        metrics.close()


class RecordingPipeline:
    def __init__(self, calls: list) -> None:
        self.calls = calls

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))

    def execute(self) -> None:
        self.calls.append(("execute", (), {}))


def test_the_status_is_published_with_a_ttl_and_reports_the_interval_only() -> None:
    service, latency = busy_service()
    publisher = StatusPublisher(service, "redis://127.0.0.1:1/0", "bc", StatusConfig(1.0))
    calls: list = []
    publisher.client = SimpleNamespace(
        pipeline=lambda transaction: RecordingPipeline(calls), close=lambda: None
    )  # type: ignore[assignment]
    service.counters.events_applied += 500
    service.counters.deltas += 50
    latency.written([output(3, 90)], NOW_NS)
    publisher.publish_once()
    (name, (key, payload), kwargs), (zadd, (index, members), _), *_ = calls
    assert name == "set" and key == "bc:{status}:md:md-host-1" and kwargs == {"px": 3000}
    assert zadd == "zadd" and index == "bc:{status}:index" and key in members
    status = decode_status(payload)
    assert status is not None and status["kind"] == "md" and status["id"] == "md-host-1"
    assert status["rates"]["events_per_s"] > 0 and status["rates"]["deltas_per_s"] > 0
    assert status["totals"]["events_applied"] == 1500
    assert status["consumer_lag"] == 10 and status["lag_by_partition"] == {"0": 10, "1": 0}
    assert status["partitions"] == [0, 1] and status["redis"] == "up"
    assert status["latency"]["exchange_to_close"]["count"] == 1  # the interval's delta, not the earlier two
    assert 90.0 <= status["latency"]["exchange_to_close"]["p50"] <= 91.5
    publisher.stop()
