"""Every md_service counter in one place, so a status line, a test or an exporter reads the same.

Plain integer attributes (cheap to bump on the hot path) plus the window latencies
(:class:`WindowLatency`, in :mod:`mdcore.latency`'s histograms, which the status bus and
the Prometheus exporter read as they are). :meth:`MdCounters.as_dict` is the one view the
status uses.

The latencies are recorded once, when Redis acknowledged a window write, from the times
every delta carries:

- ``exchange_to_close``: the earliest exchange time in the window (``xts``) → the close (``ts``);
- ``close_to_publish``: the close → Redis acknowledged the atomic write (the delta is out);

both per published delta; and ``build``: closing the windows of one write (before Redis), per write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mdcore.latency import LatencyHistogram, delta_times

if TYPE_CHECKING:
    from md_service.pair_stream import WindowOutput

STAGES = ("exchange_to_close", "close_to_publish")  # per delta, on the status bus and /metrics


class WindowLatency:
    """The window latencies (see the module docstring), in µs; never reset (readers take intervals)."""

    __slots__ = ("_to_close", "_to_publish", "build", "histograms")

    def __init__(self) -> None:
        self.histograms = {stage: LatencyHistogram() for stage in STAGES}
        self._to_close = self.histograms["exchange_to_close"]
        self._to_publish = self.histograms["close_to_publish"]
        self.build = LatencyHistogram()  # closing one write's windows, before Redis

    def written(self, outputs: Sequence[WindowOutput], acked_ns: int) -> None:
        """Redis acknowledged the write of ``outputs`` at ``acked_ns`` (the clock of the deltas' ``ts``)."""
        to_close, to_publish = self._to_close, self._to_publish
        for out in outputs:
            if out.delta:
                try:
                    ts, xts = delta_times(out.delta)
                except ValueError:  # not md_service's own encoding: nothing to time, nothing to break
                    continue
                to_close.record((ts - xts) // 1000)
                to_publish.record((acked_ns - ts) // 1000)


class MdCounters:
    """Monotonic counts since start; ``invalid`` is broken down by :attr:`InvalidEventError.kind`."""

    __slots__ = (
        "dead_letter_failed",
        "dead_lettered",
        "deltas",
        "epochs_started",
        "events_applied",
        "events_duplicate",
        "events_invalid",
        "events_late",
        "events_unowned",
        "exchange_gaps",
        "exchange_missing",
        "invalid",
        "kafka_errors",
        "latency",
        "level_changes",
        "pairs_refused",
        "partition_writes_failed",
        "partitions_claimed",
        "partitions_lost",
        "partitions_released",
        "published_bytes",
        "redis_errors",
        "releases",
        "replays",
        "snapshots",
        "state_writes",
        "takeovers",
        "takeovers_cold",
        "windows",
        "windows_late",
        "writes_lost",
    )

    def __init__(self) -> None:
        self.events_applied = 0  # events applied to a book (including those after a gap)
        self.level_changes = 0  # level changes those events carried
        self.events_duplicate = 0  # xseq already applied: a redelivery, skipped
        self.events_late = 0  # an xseq the exchange skipped, arriving after newer ones: skipped
        self.exchange_gaps = 0  # times a pair's xseq jumped forward
        self.exchange_missing = 0  # xseqs skipped by those jumps
        self.events_invalid = 0  # malformed messages skipped (total of ``invalid``)
        self.invalid: Counter[str] = Counter()
        self.events_unowned = 0  # messages of a partition this instance does not (or no longer) own
        self.dead_lettered = 0
        self.dead_letter_failed = 0
        self.windows = 0  # window writes Redis accepted (at least partly)
        self.windows_late = 0  # windows closed late because the loop fell behind
        self.deltas = 0  # deltas published
        self.snapshots = 0  # snapshots stored
        self.state_writes = 0  # state-only writes (xseq moved or a check, nothing published)
        self.published_bytes = 0
        self.epochs_started = 0  # new epochs (first start of a pair, or Redis lost its state)
        self.partitions_claimed = 0
        self.partitions_lost = 0  # fenced: another instance owns a partition we were writing
        self.partitions_released = 0  # taken away by the group (revoked, or lost after a session timeout)
        self.takeovers = 0  # partitions taken over because their writer released them or went silent
        self.takeovers_cold = 0  # of those, restored from Redis (not continued from books kept warm)
        self.releases = 0  # partitions given away by a clean stop
        self.pairs_refused = 0  # writes refused because Redis held another position
        self.replays = 0  # partitions re-read from their start to rebuild a book
        self.writes_lost = 0  # claims that found Redis behind the writes it had confirmed (write marks)
        self.redis_errors = 0
        self.partition_writes_failed = 0  # partition windows not written: their cluster node was down
        self.kafka_errors = 0
        self.latency = WindowLatency()

    def count_invalid(self, kind: str) -> None:
        self.events_invalid += 1
        self.invalid[kind] += 1

    def as_dict(self) -> dict[str, Any]:
        """All counters, plus the close → Redis ack latency (per delta) and the close alone
        (per write) since start, in milliseconds."""
        out: dict[str, Any] = {
            name: getattr(self, name) for name in self.__slots__ if name not in ("invalid", "latency")
        }
        out["invalid"] = dict(self.invalid)
        publish = self.latency.histograms["close_to_publish"].copy()
        for pct in (50, 99, 99.9):
            out[f"publish_ms_p{pct:g}"] = publish.percentile(pct) / 1000
        out["publish_ms_max"] = publish.highest() / 1000
        out["build_ms_p99"] = self.latency.build.copy().percentile(99) / 1000
        return out
