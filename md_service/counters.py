"""Every md_service counter in one place, so a status line, a test or an exporter reads the same.

Plain integer attributes (cheap to bump on the hot path) plus one latency histogram:
window close -> Redis acknowledged the write, in microseconds. :meth:`MdCounters.as_dict`
is the one view everything else uses.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hdrh.histogram import HdrHistogram

_LATENCY_MAX_US = 60_000_000  # a window write stuck for a minute is still recorded, as a minute


class MdCounters:
    """Monotonic counts since start; ``invalid`` is broken down by :attr:`InvalidEventError.kind`."""

    __slots__ = (
        "build_latency_us",
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
        "level_changes",
        "pairs_refused",
        "partition_writes_failed",
        "partitions_claimed",
        "partitions_lost",
        "partitions_released",
        "publish_latency_us",
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
        self.publish_latency_us = HdrHistogram(1, _LATENCY_MAX_US, 3)
        self.build_latency_us = HdrHistogram(1, _LATENCY_MAX_US, 3)  # the close alone, before Redis

    def count_invalid(self, kind: str) -> None:
        self.events_invalid += 1
        self.invalid[kind] += 1

    def record_publish(self, build_us: int, latency_us: int) -> None:
        self.build_latency_us.record_value(min(max(1, build_us), _LATENCY_MAX_US))
        self.publish_latency_us.record_value(min(max(1, latency_us), _LATENCY_MAX_US))

    def as_dict(self) -> dict[str, Any]:
        """All counters, plus publish latency percentiles in milliseconds."""
        out: dict[str, Any] = {
            name: getattr(self, name)
            for name in self.__slots__
            if name not in ("invalid", "publish_latency_us", "build_latency_us")
        }
        out["invalid"] = dict(self.invalid)
        hist = self.publish_latency_us
        for pct in (50, 99, 99.9):
            out[f"publish_ms_p{pct:g}"] = hist.get_value_at_percentile(pct) / 1000
        out["publish_ms_max"] = hist.get_max_value() / 1000
        out["build_ms_p99"] = self.build_latency_us.get_value_at_percentile(99) / 1000
        return out
