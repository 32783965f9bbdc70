"""mdruntime.metrics_http: the exporter settings, its life, and latency histograms for Prometheus."""

from __future__ import annotations

import logging
import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from mdcore.latency import EXPORT_BOUNDS_S, LatencyHistogram
from mdcore.settings import SettingError
from mdruntime.metrics_http import (
    MetricsConfig,
    ThreadedExporter,
    histogram_family,
    labelled_histogram_family,
    load_metrics_config,
)

KEY = "BOOKCAST_X_METRICS_PORT"


def test_defaults() -> None:
    assert load_metrics_config({}, KEY, 9105) == MetricsConfig("127.0.0.1", 9105)
    assert MetricsConfig().port == 0 and not MetricsConfig().enabled


def test_settings_read_from_the_environment() -> None:
    cfg = load_metrics_config({KEY: " 9300 ", "BOOKCAST_METRICS_HOST": "0.0.0.0"}, KEY, 9105)
    assert cfg == MetricsConfig("0.0.0.0", 9300) and cfg.enabled
    assert not load_metrics_config({KEY: "0"}, KEY, 9105).enabled  # 0: no exporter
    assert load_metrics_config({KEY: "65535"}, KEY, 9105).port == 65535


@pytest.mark.parametrize("value", ["-1", "65536", "ninety", "9100.5"])
def test_bad_ports_are_setting_errors(value) -> None:
    with pytest.raises(SettingError, match=KEY):
        load_metrics_config({KEY: value}, KEY, 9105)


class OneGauge:
    def collect(self):
        yield GaugeMetricFamily("bookcast_test_up", "up", value=1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_exporter_serves_stops_and_a_taken_port_is_only_a_warning(caplog) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OneGauge())
    exporter = ThreadedExporter(registry, logging.getLogger("tier.metrics"))
    assert not exporter.serve(MetricsConfig("127.0.0.1", 0)) and exporter.port is None  # disabled
    port = _free_port()
    with caplog.at_level(logging.INFO, logger="tier.metrics"):
        assert exporter.serve(MetricsConfig("127.0.0.1", port)) and exporter.port == port
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert b"bookcast_test_up 1.0" in body and exporter.render() == body
        other = ThreadedExporter(CollectorRegistry(), logging.getLogger("tier.metrics"))
        with caplog.at_level(logging.WARNING, logger="tier.metrics"):
            assert not other.serve(MetricsConfig("127.0.0.1", port)) and other.port is None
    finally:
        exporter.close()
    assert exporter.port is None
    lines = [(r.name, r.getMessage()) for r in caplog.records]
    assert ("tier.metrics", f"metrics on http://127.0.0.1:{port}/metrics") in lines
    assert any(name == "tier.metrics" and "running without /metrics" in msg for name, msg in lines)
    with socket.socket() as s:  # closed: the port can be listened on again (past TIME_WAIT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def _histogram(*values_us: int) -> LatencyHistogram:
    h = LatencyHistogram()
    for v in values_us:
        h.record(v)
    return h


def test_histogram_family_buckets_in_seconds() -> None:
    family = histogram_family("bookcast_x_seconds", "doc", _histogram(500, 2_000, 2_000_000))
    samples = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert samples[("bookcast_x_seconds_count", None)] == 3
    assert samples[("bookcast_x_seconds_sum", None)] == pytest.approx(2.0025)
    assert samples[("bookcast_x_seconds_bucket", "+Inf")] == 3
    buckets = [samples[("bookcast_x_seconds_bucket", repr(b))] for b in EXPORT_BOUNDS_S]
    assert buckets == sorted(buckets) and buckets[0] <= 1 and buckets[-1] <= 3


def test_labelled_family_has_one_histogram_per_value() -> None:
    family = labelled_histogram_family(
        "bookcast_y_seconds", "doc", "stage", {"a": _histogram(1_000), "b": _histogram(1_000, 3_000)}
    )
    counts = {s.labels["stage"]: s.value for s in family.samples if s.name == "bookcast_y_seconds_count"}
    assert counts == {"a": 1, "b": 2}
