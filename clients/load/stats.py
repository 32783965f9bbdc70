"""What one load-generator process counts, and latency histograms that merge across processes.

Latencies go into HdrHistograms (microseconds, 3 significant digits, 1 µs … 1 h), which
keep the tail exactly enough for p99.9 and merge losslessly: each process sends its
histograms encoded, the parent adds them up. Counters are plain integers owned by one
event loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from clients.latency import HIGHEST_US, LatencyPair, summarize

__all__ = ["HIGHEST_US", "Latencies", "LoadCounters", "summarize"]


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


Latencies = LatencyPair  # exchange and window histograms of one process or of the whole run
