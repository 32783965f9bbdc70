"""Latency histograms (HdrHistogram) shared by the client library and the load generator.

Values are microseconds with 3 significant digits from 1 µs to one hour: enough to read
p99.9 and the maximum exactly enough, at about 1 µs per recorded value. Histograms merge
losslessly (:meth:`LatencyPair.add_encoded`), so the load generator's processes can be added up.
"""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: a latency beyond it is clamped, never dropped
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def summarize(histogram: HdrHistogram) -> dict[str, float | int]:
    """Count, p50/p90/p99/p99.9, max and mean in milliseconds (a JSON-ready dict)."""
    count = histogram.get_total_count()
    if not count:
        return {"count": 0}
    body: dict[str, float | int] = {"count": count}
    for p in PERCENTILES:
        body[f"p{p:g}_ms"] = histogram.get_value_at_percentile(p) / 1000
    body["max_ms"] = histogram.get_max_value() / 1000
    body["mean_ms"] = round(histogram.get_mean_value() / 1000, 3)
    return body


class LatencyPair:
    """The two latencies of a delta: exchange time → receipt and window close → receipt (µs)."""

    __slots__ = ("exchange", "window")

    def __init__(self) -> None:
        self.exchange = new_histogram()
        self.window = new_histogram()

    def record_ns(self, exchange_ns: int, window_ns: int) -> bool:
        """Record one delta's latencies; False if one was negative (clocks apart: recorded as 0)."""
        exchange_us, window_us = exchange_ns // 1000, window_ns // 1000
        honest = exchange_us >= 0 and window_us >= 0
        self.exchange.record_value(min(max(0, exchange_us), HIGHEST_US))
        self.window.record_value(min(max(0, window_us), HIGHEST_US))
        return honest

    def encode(self) -> dict[str, bytes]:
        return {"exchange": self.exchange.encode(), "window": self.window.encode()}

    def add_encoded(self, encoded: dict[str, bytes]) -> None:
        """Add another process' histograms (from :meth:`encode`)."""
        self.exchange.decode_and_add(encoded["exchange"])
        self.window.decode_and_add(encoded["window"])

    def add(self, other: LatencyPair) -> None:
        self.exchange.add(other.exchange)
        self.window.add(other.window)

    def reset(self) -> None:
        self.exchange.reset()
        self.window.reset()

    def summary(self) -> dict[str, dict[str, float | int]]:
        return {"exchange_to_receipt": summarize(self.exchange), "window_to_receipt": summarize(self.window)}
