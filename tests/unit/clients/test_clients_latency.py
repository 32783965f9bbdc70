"""Latency histograms: microseconds, clamped not dropped, summarized in ms, merged losslessly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.latency import HIGHEST_US, PERCENTILES, LatencyPair, new_histogram, summarize
from clients.load.stats import Latencies


def test_an_empty_histogram_summarizes_to_a_zero_count() -> None:
    assert summarize(new_histogram()) == {"count": 0}
    assert LatencyPair().summary() == {
        "exchange_to_receipt": {"count": 0},
        "window_to_receipt": {"count": 0},
    }


def test_the_summary_is_in_milliseconds_with_every_percentile() -> None:
    histogram = new_histogram()
    for us in range(1_000, 101_000, 1_000):  # 1 ms .. 100 ms
        histogram.record_value(us)
    body = summarize(histogram)
    assert set(body) == {"count", "max_ms", "mean_ms"} | {f"p{p:g}_ms" for p in PERCENTILES}
    assert body["count"] == 100
    assert body["p50_ms"] == pytest.approx(50.0, rel=1e-3)
    assert body["p99_ms"] == pytest.approx(99.0, rel=1e-3)
    assert body["max_ms"] == pytest.approx(100.0, rel=1e-3)
    assert body["mean_ms"] == pytest.approx(50.5, rel=1e-3)


def test_a_delta_records_both_latencies_in_microseconds() -> None:
    pair = LatencyPair()
    assert pair.record_ns(exchange_ns=7_000_999, window_ns=2_000_000) is True
    assert pair.exchange.get_total_count() == pair.window.get_total_count() == 1
    assert pair.exchange.get_max_value() == pair.exchange.get_highest_equivalent_value(7_000)
    assert pair.window.get_max_value() == pair.window.get_highest_equivalent_value(2_000)


def test_a_negative_latency_is_recorded_as_zero_and_reported() -> None:
    pair = LatencyPair()
    assert pair.record_ns(exchange_ns=-5_000, window_ns=3_000) is False
    assert pair.record_ns(exchange_ns=5_000, window_ns=-1) is False
    assert pair.exchange.get_total_count() == pair.window.get_total_count() == 2
    assert pair.exchange.get_min_value() == 0 and pair.window.get_min_value() == 0


def test_a_latency_beyond_an_hour_is_clamped_never_dropped() -> None:
    pair = LatencyPair()
    assert pair.record_ns(10**18, 10**18) is True
    assert pair.exchange.get_total_count() == 1
    assert pair.window.get_max_value() == pair.window.get_highest_equivalent_value(HIGHEST_US)


latencies_ns = st.lists(st.tuples(st.integers(-(10**6), 10**13), st.integers(-(10**6), 10**13)), max_size=30)


@settings(max_examples=10, deadline=None)
@given(first=latencies_ns, second=latencies_ns)
def test_merging_encoded_or_live_histograms_equals_recording_everything_in_one(first, second) -> None:
    one, two, both = LatencyPair(), LatencyPair(), LatencyPair()
    for part, values in ((one, first), (two, second)):
        for exchange, window in values:
            part.record_ns(exchange, window)
            both.record_ns(exchange, window)
    encoded = LatencyPair()
    encoded.add_encoded(one.encode())
    encoded.add_encoded(two.encode())
    live = LatencyPair()
    live.add(one)
    live.add(two)
    assert encoded.summary() == live.summary() == both.summary()


def test_reset_empties_both_histograms() -> None:
    pair = LatencyPair()
    pair.record_ns(1_000_000, 1_000_000)
    pair.reset()
    assert pair.summary() == LatencyPair().summary()


# --- Latencies: the load generator's pair of histograms ---------------------------------------


def test_histograms_merge_exactly_across_processes():
    one, two, both = Latencies(), Latencies(), Latencies()
    for i in range(1, 1001):
        (one if i % 2 else two).window.record_value(i * 100)
        both.window.record_value(i * 100)
    merged = Latencies()
    merged.add_encoded(one.encode())
    merged.add_encoded(two.encode())
    assert summarize(merged.window) == summarize(both.window)
    s = summarize(both.window)
    assert s["count"] == 1000
    assert s["p50_ms"] == pytest.approx(50.0, rel=0.01)
    assert s["p99.9_ms"] == pytest.approx(99.9, rel=0.01)
    assert s["max_ms"] == pytest.approx(100.0, rel=0.01)
    assert summarize(Latencies().window) == {"count": 0}
