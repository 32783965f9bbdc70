"""What one load-generator process counts, and latency histograms that merge across processes.

Latencies go into HdrHistograms (microseconds, 3 significant digits, 1 µs … 1 h), which
keep the tail exactly enough for p99.9 and merge losslessly: each process sends its
histograms encoded, the parent adds them up. Counters are plain integers owned by one
event loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from hdrh.histogram import HdrHistogram

from clients.latency import HIGHEST_US, LatencyPair, new_histogram, summarize

__all__ = ["HIGHEST_US", "ConnTimes", "GroupTally", "Latencies", "LoadCounters", "clear", "summarize"]


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
    connect_failures: int = (
        0  # attempts that failed (TCP refused, timed out, handshake rejected), not refusals
    )
    refusals: int = 0  # handshakes the gateway answered 503 or 429 (load shedding): retried after Retry-After
    refusals_503: int = 0
    refusals_429: int = 0
    refused_then_connected: int = 0  # connections refused at least once that later connected
    disconnects: int = 0  # open connections lost before the end of the run
    negative_latency: int = 0  # receipt before the message's time (clocks apart): counted as 0
    since_subscribes: int = 0  # subscribes that carried positions (`since`) after a reconnect
    recovered_answers: int = 0  # ... answered "recovered": true (no snapshot needed)
    recovery_misses: int = 0  # ... answered "recovered": false (snapshots follow)
    resynced: int = 0  # connections fully synced again after a disconnect

    def add(self, other: LoadCounters) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, int]) -> LoadCounters:
        return cls(**values)


Latencies = LatencyPair  # exchange and window histograms of one process or of the whole run


def clear(latencies: Latencies) -> None:
    """Empty both histograms in place, cheaply: new ones (~0.1 ms) instead of ``reset()`` (~3 ms each).

    In place, because every checker of a worker records into the same object.
    """
    latencies.exchange, latencies.window = new_histogram(), new_histogram()


class ConnTimes:
    """How long connections took (µs): the handshake, the first full sync, the sync after a disconnect.

    ``first_sync`` runs from the connection's first attempt to every pair synced;
    ``resync`` from the moment a connection was lost to every pair synced again (recovered
    with ``since`` or by snapshot) — what a gateway restart costs each client, its own
    reconnect backoff included; ``subscribed`` from a (re)connection's subscribe to every
    pair synced — the gateway's part of it.
    """

    __slots__ = ("first_sync", "handshake", "resync", "subscribed")
    NAMES = ("handshake", "first_sync", "resync", "subscribed")

    def __init__(self) -> None:
        self.handshake = new_histogram()
        self.first_sync = new_histogram()
        self.resync = new_histogram()
        self.subscribed = new_histogram()

    @staticmethod
    def record(histogram: HdrHistogram, ns: int) -> None:
        histogram.record_value(min(max(1, ns // 1000), HIGHEST_US))

    def encode(self) -> dict[str, bytes]:
        return {name: getattr(self, name).encode() for name in self.NAMES}

    def add_encoded(self, encoded: dict[str, bytes]) -> None:
        for name in self.NAMES:
            if name in encoded:
                getattr(self, name).decode_and_add(encoded[name])

    def add(self, other: ConnTimes) -> None:
        for name in self.NAMES:
            getattr(self, name).add(getattr(other, name))

    def reset(self) -> None:
        for name in self.NAMES:  # new histograms: HdrHistogram.reset() zeroes counts in a Python loop
            setattr(self, name, new_histogram())

    def summary(self) -> dict[str, dict[str, float | int]]:
        return {name: summarize(getattr(self, name)) for name in self.NAMES}


@dataclass(slots=True)
class GroupTally:
    """Frames and deltas of one group of connections (drawn, all-pairs, …): frames per client apart."""

    connections: int = 0
    frames: int = 0
    deltas: int = 0
    open: int = 0  # connections of the group open now: per-client figures divide by these

    def add(self, other: GroupTally) -> None:
        self.connections += other.connections
        self.frames += other.frames
        self.deltas += other.deltas
        self.open += other.open

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
