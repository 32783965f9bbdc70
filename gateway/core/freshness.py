"""Is each pair's book current? The pure rules behind the per-pair verdicts of ``/health``.

md_service publishes nothing for a window without changes, so silence alone cannot tell a
quiet market from a dead pipeline. Two signals can:

- **the pair's own rhythm** (:class:`ArrivalGaps`): the usual gap between its deltas here,
  learned from the last :data:`KEEP` gaps (their 90th percentile). A pair is *overdue* when
  it has had no delta for ``max(overdue_min_s, overdue_factor × usual gap)``.
- **md_service's heartbeat** (:class:`PipelineState`): every md_service instance writes a
  status to the status bus each second (:mod:`mdcore.status_bus`) saying whether its Kafka
  and Redis links are up. *up*: an instance is there with both links up; *down*: none is
  (any more), or none can work; *unknown*: this gateway has not seen one yet (md_service not
  started since, or its status bus is off).

:func:`judge` combines them with the replica's own state into one verdict per pair.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

KEEP = 64  # gaps kept per pair
MERGE_S = 0.005  # deltas closer than this are one arrival (a burst read in one turn, a history fill)
MIN_GAPS = 8  # gaps needed before a pair's rhythm is trusted
QUANTILE = 0.9


class Freshness(Enum):
    LIVE = "live"  # deltas arrive at the pair's usual rate (or too few seen yet to say otherwise)
    QUIET = "quiet"  # overdue, but md_service says the pipeline works: the market is quiet
    OVERDUE = "overdue"  # overdue, and no md_service heartbeat to tell why
    STALE = "stale"  # the book may be out of date (see :class:`StaleReason`)
    LOADING = "loading"  # being loaded or caught up, for less than ``stale_s``
    NO_DATA = "no_data"  # md_service has no stream for the pair


class StaleReason(Enum):
    NOT_LIVE = "not_live"  # this gateway could not load or catch up its replica for stale_s (local)
    BEHIND = "behind"  # the audit found this gateway's replica behind md_service (local)
    PIPELINE_DOWN = "pipeline_down"  # md_service is silent or cannot work: nothing new can arrive

    @property
    def local(self) -> bool:
        """Whether the cause is this gateway's own (another gateway may serve the pair)."""
        return self is not StaleReason.PIPELINE_DOWN


class ArrivalGaps:
    """Per pair: when its last delta arrived and the recent gaps between deltas."""

    def __init__(self, keep: int = KEEP, merge_s: float = MERGE_S, min_gaps: int = MIN_GAPS) -> None:
        self._keep = keep
        self._merge_s = merge_s
        self._min_gaps = min_gaps
        self._last: dict[str, float] = {}
        self._gaps: dict[str, deque[float]] = {}

    def record(self, pair: str, now: float) -> None:
        last = self._last.get(pair)
        self._last[pair] = now
        if last is None or now - last < self._merge_s:
            return
        gaps = self._gaps.get(pair)
        if gaps is None:
            gaps = self._gaps[pair] = deque(maxlen=self._keep)
        gaps.append(now - last)

    def last_arrival(self, pair: str) -> float | None:
        return self._last.get(pair)

    def usual_gap(self, pair: str) -> float | None:
        """The 90th percentile of the pair's recent gaps; None until enough were seen."""
        gaps = self._gaps.get(pair)
        if gaps is None or len(gaps) < self._min_gaps:
            return None
        ordered = sorted(gaps)
        return ordered[min(len(ordered) - 1, int(QUANTILE * len(ordered)))]

    def keep_only(self, pairs: Iterable[str]) -> None:
        """Forget pairs no longer wanted (their replicas are gone)."""
        wanted = set(pairs)
        for pair in [p for p in self._last if p not in wanted]:
            del self._last[pair]
            self._gaps.pop(pair, None)


class PipelineState:
    """md_service's heartbeat as this gateway last read it from the status bus."""

    def __init__(self) -> None:
        self.state = "unknown"  # "up", "down" or "unknown"
        self.reason = "no md_service status seen yet"
        self.instances = 0
        self.seen_at: float | None = None  # when a status of a working instance was last read

    def observe(self, statuses: Iterable[Mapping[str, Any]], now: float) -> None:
        """Take the md_service statuses now on the bus (each one expires within seconds)."""
        present = list(statuses)
        self.instances = len(present)
        working = [s for s in present if s.get("kafka") != "down" and s.get("redis") != "down"]
        if working:
            self.state, self.reason, self.seen_at = "up", "", now
        elif present:
            links = sorted({link for s in present for link in ("kafka", "redis") if s.get(link) == "down"})
            self.state, self.reason = "down", f"md_service reports {' and '.join(links)} down"
        elif self.seen_at is not None or self.state == "down":
            self.state, self.reason = "down", "no md_service status on the bus"

    def silent_s(self, now: float) -> float | None:
        """Seconds since a working md_service was last seen (None if never)."""
        return None if self.seen_at is None else round(now - self.seen_at, 3)


@dataclass(frozen=True, slots=True)
class PairInputs:
    """What :func:`judge` needs to know about one pair."""

    replica_state: str  # gateway.core.replica.ReplicaState's value: "live", "loading", "no_data"
    local_stale: StaleReason | None  # NOT_LIVE / BEHIND as found by the gateway, else None
    age_s: float  # since its last delta (or since it was loaded)
    usual_gap_s: float | None


def overdue_after(usual_gap_s: float | None, factor: float, min_s: float) -> float | None:
    """Silence after which a pair with this rhythm is overdue (None: rhythm not known yet)."""
    return None if usual_gap_s is None else max(min_s, factor * usual_gap_s)


def judge(
    pair: PairInputs, pipeline: str, factor: float, min_s: float
) -> tuple[Freshness, StaleReason | None]:
    """One pair's verdict; the reason is set for STALE only."""
    if pair.replica_state == "no_data":
        return Freshness.NO_DATA, None
    if pair.local_stale is not None:
        return Freshness.STALE, pair.local_stale
    if pair.replica_state != "live":
        return Freshness.LOADING, None
    if pipeline == "down":
        return Freshness.STALE, StaleReason.PIPELINE_DOWN
    limit = overdue_after(pair.usual_gap_s, factor, min_s)
    if limit is not None and pair.age_s > limit:
        return (Freshness.QUIET if pipeline == "up" else Freshness.OVERDUE), None
    return Freshness.LIVE, None
