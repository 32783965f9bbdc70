"""The shared latency histogram and the delta time peek: plain calls (the status bus helpers:
``test_mdcore_status_bus.py``)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdcore.codec import encode_delta
from mdcore.latency import (
    BUCKETS,
    HIGHEST_US,
    IntervalReader,
    LatencyHistogram,
    bucket_of,
    bucket_range,
    delta_times,
)
from mdcore.messages import Delta


def test_buckets_tile_the_range_without_gaps_and_stay_narrow() -> None:
    previous_high = -1
    for index in range(bucket_of(HIGHEST_US) + 1):
        low, high = bucket_range(index)
        assert low == previous_high + 1, index
        assert bucket_of(low) == index and bucket_of(high) == index
        assert (high - low + 1) / low <= 1 / 64 if low >= 128 else low == high
        previous_high = high
    assert bucket_of(HIGHEST_US) < BUCKETS and bucket_of(HIGHEST_US * 10) == bucket_of(HIGHEST_US)
    assert bucket_of(-5) == 0


@given(st.lists(st.integers(min_value=0, max_value=HIGHEST_US), min_size=1, max_size=300))
def test_percentiles_are_never_below_the_truth_and_at_most_one_bucket_above(values: list[int]) -> None:
    hist = LatencyHistogram()
    for v in values:
        hist.record(v)
    ordered = sorted(values)
    assert hist.count == len(values) and hist.sum_us == sum(values) and hist.highest() == ordered[-1]
    for q in (50.0, 90.0, 99.0, 99.9, 100.0):
        truth = ordered[max(1, math.ceil(len(ordered) * q / 100)) - 1]
        got = hist.percentile(q)
        assert truth <= got <= max(truth, bucket_range(bucket_of(truth))[1])


def test_summary_in_ms_and_an_empty_histogram() -> None:
    assert LatencyHistogram().summary_ms() == {"count": 0, "p50": 0, "p90": 0, "p99": 0, "p999": 0, "max": 0}
    hist = LatencyHistogram()
    for v in range(1, 1001):
        hist.record(v * 100)  # 0.1 .. 100 ms
    summary = hist.summary_ms()
    assert summary["count"] == 1000 and summary["max"] == 100.0
    assert 50.0 <= summary["p50"] <= 50.8 and 99.0 <= summary["p99"] <= 100.0


def test_merging_parts_gives_the_histogram_of_the_whole() -> None:
    rng = random.Random(3)
    values = [int(rng.lognormvariate(9, 1.5)) for _ in range(5000)]
    whole, parts = LatencyHistogram(), [LatencyHistogram() for _ in range(3)]
    for i, v in enumerate(values):
        whole.record(v)
        parts[i % 3].record(v)
    merged = LatencyHistogram()
    for part in parts:
        merged.add(LatencyHistogram.from_wire(part.to_wire(), part.highest()))
    assert merged.counts == whole.counts and merged.highest() == whole.highest()
    for q in (50, 99, 99.9):
        assert merged.percentile(q) == whole.percentile(q)


def test_interval_reader_sees_only_what_came_since_its_last_look() -> None:
    hist = LatencyHistogram()
    reader = IntervalReader(hist)
    for v in (10, 20, 5000):
        hist.record(v)
    first = reader.take()
    assert first.count == 3 and first.highest() == 5000
    hist.record(70)
    second = reader.take()
    assert second.count == 1 and second.percentile(50) == 70 and second.highest() == 70
    assert reader.take().count == 0 and hist.count == 4  # the source itself is never reset


def test_cumulative_counts_are_prometheus_le_buckets() -> None:
    hist = LatencyHistogram()
    for v in (100, 900, 999, 1001, 40_000, 7_000_000):  # 1001: its bucket reaches past 1000
        hist.record(v)
    assert hist.cumulative([500, 1000, 50_000, 10_000_000]) == [1, 3, 5, 6]


def test_from_wire_skips_garbage() -> None:
    hist = LatencyHistogram.from_wire([[5, 2], ["x", 1], [BUCKETS + 3, 1], [7], [9, -1]])
    assert hist.count == 2 and hist.percentile(100) == 5


@pytest.mark.parametrize("levels", [0, 1, 400])
def test_delta_times_reads_ts_and_xts_of_md_service_bytes(levels: int) -> None:
    delta = Delta("BTC-USD", "e17-ab", 42, 1_700_000_000_123_456_789, 1_700_000_000_023_456_789,
                  [["64000.5", "1.25"]] * levels, [], 123)  # fmt: skip
    assert delta_times(encode_delta(delta)) == (delta.ts, delta.xts)


def test_delta_times_falls_back_to_a_decode_and_refuses_what_is_no_delta() -> None:
    assert delta_times(b'{"xts":5,"ts":9,"type":"delta"}') == (9, 5)
    for raw in (b"nope", b'{"type":"snapshot","ts":1}', b"[]"):
        with pytest.raises(ValueError):
            delta_times(raw)
