"""ClientStats and RateMeter: plain counters and a sliding-window rate with time passed in."""

from __future__ import annotations

import orjson
import pytest

from clients import ClientStats
from clients.stats import RateMeter


def test_rate_of_a_steady_stream() -> None:
    meter = RateMeter(window=5.0)
    for i in range(51):
        meter.mark(100.0 + i * 0.1)  # 10 per second for 5 s
    assert meter.rate(105.0) == pytest.approx(10.0)


def test_rate_decays_when_events_stop_and_forgets_old_ones() -> None:
    meter = RateMeter(window=2.0)
    for i in range(11):
        meter.mark(i * 0.1)
    assert meter.rate(1.0) == pytest.approx(10.0)
    assert meter.rate(1.5) < meter.rate(1.0)
    assert meter.rate(10.0) == 0.0


def test_rate_needs_two_events() -> None:
    meter = RateMeter()
    assert meter.rate(0.0) == 0.0
    meter.mark(1.0)
    assert meter.rate(1.0) == 0.0
    with pytest.raises(ValueError):
        RateMeter(window=0)


def test_stats_record_latency_and_serialise() -> None:
    stats = ClientStats()
    stats.record_latency(exchange_ns=5_000_000, window_ns=2_000_000)
    stats.record_latency(exchange_ns=3_000_000, window_ns=1_000_000)
    assert stats.last_exchange_latency_ns == 3_000_000
    assert stats.max_exchange_latency_ns == 5_000_000
    assert stats.max_window_latency_ns == 2_000_000
    report = orjson.loads(orjson.dumps(stats.as_dict()))
    assert report["last_window_latency_ns"] == 1_000_000
    assert report["gaps"] == 0 and "recoveries" in report
    latency = report["latency_ms"]
    assert latency["exchange_to_receipt"]["count"] == latency["window_to_receipt"]["count"] == 2
    assert latency["exchange_to_receipt"]["max_ms"] == pytest.approx(5.0, rel=0.01)
    assert latency["window_to_receipt"]["p50_ms"] == pytest.approx(1.0, rel=0.01)
