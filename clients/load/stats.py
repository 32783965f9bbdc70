"""What one load-generator process counts, and latency histograms that merge across processes.

Latencies go into HdrHistograms (microseconds, 3 significant digits, 1 µs … 1 h), which
keep the tail exactly enough for p99.9 and merge losslessly: each process sends its
histograms encoded, the parent adds them up. Counters are plain integers owned by one
event loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: a latency beyond it is clamped, never dropped
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


@dataclass(slots=True)
class LoadCounters:
    """Counters of one process (or, added up, of the whole run)."""

    frames: int = 0  # WebSocket text frames received
    bytes: int = 0  # their payload bytes
    messages: int = 0  # protocol messages in them (a frame may be an array)
    snapshots: int = 0
    deltas: int = 0  # deltas that continued their pair's stream (seq = last + 1)
    stale: int = 0  # deltas at or below the pair's seq (ignored)
    ignored: int = 0  # deltas for a pair waiting for its snapshot
    gaps: int = 0  # seq jumps: a delta was missing
    epoch_changes: int = 0  # a delta of another epoch than the book's
    resyncs: int = 0  # resync requests sent (after a gap, epoch change or checksum mismatch)
    verified: int = 0  # messages whose checksum was verified (sampled connections)
    checksum_failures: int = 0
    acks: int = 0  # "subscribed" answers
    errors: int = 0  # "error" messages from the gateway
    bad_frames: int = 0  # frames that are not JSON, or messages missing fields
    connects: int = 0  # connections opened and subscribed
    connect_failures: int = 0  # attempts that failed (refused, timed out, handshake rejected)
    disconnects: int = 0  # open connections lost before the end of the run
    negative_latency: int = 0  # receipt before the message's time (clocks apart): counted as 0

    def add(self, other: LoadCounters) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, int]) -> LoadCounters:
        return cls(**values)


class Latencies:
    """Exchange time → receipt and window close → receipt, in µs, for deltas."""

    __slots__ = ("exchange", "window")

    def __init__(self) -> None:
        self.exchange = new_histogram()
        self.window = new_histogram()

    def encode(self) -> dict[str, bytes]:
        return {"exchange": self.exchange.encode(), "window": self.window.encode()}

    def add_encoded(self, encoded: dict[str, bytes]) -> None:
        """Add another process' histograms (from :meth:`encode`)."""
        self.exchange.decode_and_add(encoded["exchange"])
        self.window.decode_and_add(encoded["window"])

    def reset(self) -> None:
        self.exchange.reset()
        self.window.reset()


def summarize(histogram: HdrHistogram) -> dict[str, float | int]:
    """Count, p50/p90/p99/p99.9 and max in milliseconds (a JSON-ready dict)."""
    count = histogram.get_total_count()
    if not count:
        return {"count": 0}
    body: dict[str, float | int] = {"count": count}
    for p in PERCENTILES:
        body[f"p{p:g}_ms"] = histogram.get_value_at_percentile(p) / 1000
    body["max_ms"] = histogram.get_max_value() / 1000
    body["mean_ms"] = round(histogram.get_mean_value() / 1000, 3)
    return body
