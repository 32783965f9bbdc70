"""Latency histograms every tier records into and every reader can merge exactly.

One bucket layout for all of bookcast: values are microseconds, exact below 128 µs, then 64
buckets per power of two (each at most 1.6 % wide) up to one hour. Because the layout is
fixed, histograms from md_service, several gateways and load-generator processes add up
bucket by bucket, and percentiles of the sum are as good as those of each part — which an
average or a percentile of percentiles is not. The buckets travel as a sparse list
(:meth:`LatencyHistogram.to_wire`) on the status bus (:mod:`mdcore.status_bus`), and
Prometheus histograms are read from the same counts at scrape time
(:meth:`LatencyHistogram.cumulative`).

Recording is one list increment plus two additions (well under a microsecond), so a hot
path can afford it per delta. :class:`IntervalReader` turns the running histogram into
"what happened since I last looked" by subtracting a copy, so the recorder never resets
anything a concurrent reader might be summing.

``delta_times`` reads a delta's window close and exchange times straight from md_service's
bytes, without decoding the levels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import orjson

SUB_BITS = 6
SUB = 1 << SUB_BITS  # buckets per power of two above the exact range
EXACT = 2 * SUB  # values below this have a bucket of their own
HIGHEST_US = 3_600_000_000  # one hour: larger values are recorded as one hour
BUCKETS = ((HIGHEST_US.bit_length() - SUB_BITS) << SUB_BITS) + SUB  # index of HIGHEST_US is below this
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))
# Prometheus ``le`` bounds (seconds) every tier exports its latency histograms with.
EXPORT_BOUNDS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,
    0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


def bucket_of(us: int) -> int:
    """The bucket index of a value in µs (negative values count as 0, huge ones as an hour)."""
    if us < EXACT:
        return us if us > 0 else 0
    if us > HIGHEST_US:
        us = HIGHEST_US
    shift = us.bit_length() - SUB_BITS - 1
    return ((shift + 1) << SUB_BITS) + (us >> shift) - SUB


def bucket_range(index: int) -> tuple[int, int]:
    """``(lowest, highest)`` value in µs that falls in bucket ``index`` (both inclusive)."""
    if index < EXACT:
        return index, index
    shift = (index >> SUB_BITS) - 1
    mantissa = (index & (SUB - 1)) + SUB
    return mantissa << shift, ((mantissa + 1) << shift) - 1


class LatencyHistogram:
    """Counts of latencies (µs) in the shared bucket layout, with their exact sum and maximum."""

    __slots__ = ("counts", "max_us", "sum_us")

    def __init__(self) -> None:
        self.counts = [0] * BUCKETS
        self.sum_us = 0
        self.max_us = 0

    # --- recording (the hot path) ------------------------------------------------------

    def record(self, us: int) -> None:
        """Add one value in µs; negative values (clocks apart) count as 0."""
        if us < EXACT:
            if us < 0:
                us = 0
            self.counts[us] += 1
        else:
            if us > HIGHEST_US:
                us = HIGHEST_US
            shift = us.bit_length() - SUB_BITS - 1
            self.counts[((shift + 1) << SUB_BITS) + (us >> shift) - SUB] += 1
            if us > self.max_us:
                self.max_us = us
        self.sum_us += us

    def record_ns(self, ns: int) -> None:
        self.record(ns // 1000)

    def record_many(self, us: int, count: int) -> None:
        """Add ``count`` values equal to ``us`` (converting another histogram's buckets)."""
        if count <= 0:
            return
        us = min(max(0, us), HIGHEST_US)
        self.counts[bucket_of(us)] += count
        self.sum_us += us * count
        self.max_us = max(self.max_us, us)

    # --- reading -------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return sum(self.counts)

    def highest(self) -> int:
        """The largest value recorded: exact when known, else the top of the highest bucket."""
        for index in range(BUCKETS - 1, -1, -1):
            if self.counts[index]:
                low, high = bucket_range(index)
                return self.max_us if low <= self.max_us <= high else high
        return 0

    def percentile(self, q: float) -> int:
        """The value (µs) at or below which ``q`` percent of the values lie; 0 when empty.

        Reported as the top of the bucket holding that rank (never below the truth, at most
        1.6 % above it), and never above the largest value recorded.
        """
        total = self.count
        if not total:
            return 0
        rank = max(1, math.ceil(total * q / 100.0))
        seen = 0
        for index, n in enumerate(self.counts):
            if n:
                seen += n
                if seen >= rank:
                    return min(bucket_range(index)[1], self.highest())
        return self.highest()

    def summary_ms(self) -> dict[str, float | int]:
        """``count``, p50/p90/p99/p999 and ``max`` in ms (what the dashboard plots)."""
        body: dict[str, float | int] = {"count": self.count}
        for name, q in PERCENTILES:
            body[name] = round(self.percentile(q) / 1000, 3)
        body["max"] = round(self.highest() / 1000, 3)
        return body

    def cumulative(self, bounds_us: Sequence[int]) -> list[int]:
        """For each bound (ascending, µs), how many values lie at or below it (Prometheus ``le``).

        A bucket straddling a bound counts above it, so a figure may be short by the few
        values within 1.6 % of the bound; never more.
        """
        out: list[int] = []
        running, index = 0, 0
        counts = self.counts
        for bound in bounds_us:
            while index < BUCKETS and bucket_range(index)[1] <= bound:
                running += counts[index]
                index += 1
            out.append(running)
        return out

    # --- combining -----------------------------------------------------------------------

    def copy(self) -> LatencyHistogram:
        """A consistent copy (``list(...)`` of the counts is one step for the interpreter)."""
        other = LatencyHistogram()
        other.counts = list(self.counts)
        other.sum_us = self.sum_us
        other.max_us = self.max_us
        return other

    def add(self, other: LatencyHistogram) -> None:
        counts = self.counts
        for index, n in enumerate(other.counts):
            if n:
                counts[index] += n
        self.sum_us += other.sum_us
        self.max_us = max(self.max_us, other.max_us)

    def minus(self, earlier: LatencyHistogram) -> LatencyHistogram:
        """What was recorded after ``earlier`` (a copy of this histogram taken before)."""
        out = LatencyHistogram()
        out.counts = [max(0, a - b) for a, b in zip(self.counts, earlier.counts, strict=True)]
        out.sum_us = max(0, self.sum_us - earlier.sum_us)
        out.max_us = self.max_us  # exact only if it fell in this interval: see highest()
        return out

    def to_wire(self) -> list[list[int]]:
        """The non-empty buckets as ``[[index, count], ...]`` (JSON-ready, a few hundred bytes)."""
        return [[index, n] for index, n in enumerate(self.counts) if n]

    @classmethod
    def from_wire(cls, buckets: Iterable[Sequence[int]], max_us: int = 0) -> LatencyHistogram:
        """The inverse of :meth:`to_wire`; entries that are not ``[index, count]`` in range are skipped."""
        out = cls()
        total = 0
        for entry in buckets:
            try:
                index, n = int(entry[0]), int(entry[1])
            except (TypeError, ValueError, IndexError):
                continue
            if 0 <= index < BUCKETS and n > 0:
                out.counts[index] += n
                low, high = bucket_range(index)
                total += n * (low + high) // 2
        out.sum_us = total
        out.max_us = max(0, int(max_us))
        return out


class IntervalReader:
    """What a running histogram recorded between two calls of :meth:`take`.

    The histogram is never reset, so a recorder on another thread and a Prometheus scrape
    reading the totals are not disturbed.
    """

    __slots__ = ("_last", "source")

    def __init__(self, source: LatencyHistogram) -> None:
        self.source = source
        self._last = source.copy()

    def take(self) -> LatencyHistogram:
        now = self.source.copy()
        interval = now.minus(self._last)
        self._last = now
        return interval


def delta_times(raw: bytes) -> tuple[int, int]:
    """``(ts, xts)`` of an encoded delta — window close and earliest exchange time, ns.

    Reads the two numbers where :func:`mdcore.codec.encode_delta` puts them (before the
    levels), so a big delta costs no more than a small one; falls back to a full decode
    for anything laid out differently. Raises ``ValueError`` if the bytes are no delta.
    """
    parts = raw[:200].split(b",", 6)  # type, pair, epoch, seq, ts, xts, the rest
    if len(parts) == 7:
        ts, xts = parts[4], parts[5]
        if ts[:5] == b'"ts":' and xts[:6] == b'"xts":':
            try:
                return int(ts[5:]), int(xts[6:])
            except ValueError:
                pass
    try:
        obj = orjson.loads(raw)
        return int(obj["ts"]), int(obj["xts"])
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a delta: {exc}") from None
