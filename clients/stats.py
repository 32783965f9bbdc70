"""Counters a client keeps about its connection and books, and a small rate meter.

The counters are plain integers updated in the receive loop (no locks: one event loop
owns them). Read them at any time; :meth:`ClientStats.as_dict` gives a JSON-ready copy
for logs, dashboards and the load generator's report.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

from clients.latency import LatencyPair


@dataclass(slots=True)
class ClientStats:
    """What happened on one :class:`~clients.BookClient` since it started."""

    frames: int = 0  # WebSocket frames received
    bytes: int = 0  # payload size of those frames
    messages: int = 0  # protocol messages in them (an array frame holds several)
    snapshots: int = 0  # snapshots loaded (each replaces a book)
    deltas: int = 0  # deltas applied
    stale_deltas: int = 0  # deltas at or below the book's seq, ignored by the rules
    ignored_deltas: int = 0  # deltas for a pair waiting for its snapshot
    gaps: int = 0  # seq jumps and epoch changes detected
    checksum_failures: int = 0  # books that did not hash to the message's checksum
    resyncs: int = 0  # resync requests sent
    bad_frames: int = 0  # frames or messages that could not be decoded or applied
    errors: int = 0  # error messages from the gateway
    subscribe_refusals: int = 0  # of those, answers to our own subscribe (its pairs went unsynced)
    unexpected: int = 0  # book messages for pairs this client does not follow
    connects: int = 0  # connections opened (the first one included)
    reconnects: int = 0  # connections opened after a lost one
    disconnects: int = 0  # connections lost or closed by the server
    connect_failures: int = 0  # connection attempts that failed (other than handshake_refusals)
    handshake_refusals: int = 0  # attempts a busy gateway refused with HTTP 503 or 429 (waited out)
    recoveries: int = 0  # "subscribed" answers with "recovered": true (deltas replayed, no snapshot)
    dropped_updates: int = 0  # update notifications dropped because a consumer lagged
    callback_errors: int = 0  # exceptions raised by the on_update callback
    paced_ops: int = 0  # ops that waited for the client's op budget (ClientOptions.op_rate)
    last_exchange_latency_ns: int | None = None  # receipt - xts of the last delta
    last_window_latency_ns: int | None = None  # receipt - ts (window close) of the last delta
    max_exchange_latency_ns: int = 0
    max_window_latency_ns: int = 0
    # Every delta's two latencies, for percentiles: ``stats.latency.summary()`` (milliseconds).
    latency: LatencyPair = field(default_factory=LatencyPair, repr=False, compare=False)

    def record_latency(self, exchange_ns: int, window_ns: int) -> None:
        self.last_exchange_latency_ns = exchange_ns
        self.last_window_latency_ns = window_ns
        if exchange_ns > self.max_exchange_latency_ns:
            self.max_exchange_latency_ns = exchange_ns
        if window_ns > self.max_window_latency_ns:
            self.max_window_latency_ns = window_ns
        self.latency.record_ns(exchange_ns, window_ns)

    def as_dict(self) -> dict[str, Any]:
        """The counters and a latency summary (p50/p90/p99/p99.9/max in ms), ready for JSON."""
        body: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "latency"}
        body["latency_ms"] = self.latency.summary()
        return body


class RateMeter:
    """Events per second over a sliding window of ``window`` seconds (time passed in)."""

    __slots__ = ("_stamps", "window")

    def __init__(self, window: float = 5.0) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self.window = window
        self._stamps: deque[float] = deque()

    def mark(self, now: float) -> None:
        self._stamps.append(now)
        self._trim(now)

    def rate(self, now: float) -> float:
        """Intervals per second between the oldest kept event and ``now``; decays when events stop."""
        self._trim(now)
        stamps = self._stamps
        if len(stamps) < 2 or now <= stamps[0]:
            return 0.0
        return (len(stamps) - 1) / (now - stamps[0])

    def _trim(self, now: float) -> None:
        horizon = now - self.window
        stamps = self._stamps
        while stamps and stamps[0] < horizon:
            stamps.popleft()
