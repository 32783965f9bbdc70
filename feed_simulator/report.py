"""What a feed run achieved, and the progress lines printed while it runs.

Every figure is counted from broker confirmations. The summary compares the achieved
event rate with the requested one and says so plainly when the feed could not keep up:
a benchmark must never quote the rate it asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

log = logging.getLogger("feed_simulator.producer")

KEPT_UP = 0.97  # achieved/requested below this is reported as "could not keep up"


@dataclass(frozen=True, slots=True)
class FeedReport:
    """What a run achieved, counted from broker confirmations."""

    seed: int | None  # None for a replay (the recording's seed is in its header)
    requested_rate: float  # events/s asked for (0: as fast as possible)
    elapsed: float  # seconds from the first event to the end of the final flush
    produced_events: int  # real events handed to the producer
    delivered_events: int  # real events confirmed by the broker
    delivered_changes: int  # level changes in those events
    failed_events: int  # messages the broker or the timeout refused (real and injected)
    undelivered_events: int  # messages still unconfirmed when the final flush gave up
    scenario: str = "steady"
    mode: str = "live"  # "live" (generated) or "replay"
    processes: int = 1
    pairs: int = 0
    injected: Mapping[str, int] = field(default_factory=dict)  # faults sent, by kind
    injected_delivered: int = 0
    generate_elapsed: float = 0.0  # seconds of the send loop alone, without the final flush
    cpu_seconds: float = 0.0  # CPU time of the feed process(es) over the run, all threads

    @property
    def changes_per_cpu_s(self) -> float:
        """Level changes per CPU-second: the feed's cost, unlike the rate, barely moved by other load."""
        return self.delivered_changes / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        return self.delivered_events / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def changes_per_s(self) -> float:
        return self.delivered_changes / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def kept_up(self) -> bool:
        """True unless a rate was requested and the delivered rate fell short of it."""
        return not self.requested_rate or self.events_per_s >= KEPT_UP * self.requested_rate

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["injected"] = dict(self.injected)
        body["events_per_s"] = round(self.events_per_s, 1)
        body["changes_per_s"] = round(self.changes_per_s, 1)
        body["changes_per_event"] = round(self.delivered_changes / max(1, self.delivered_events), 3)
        body["kept_up"] = self.kept_up
        body["changes_per_cpu_s"] = round(self.changes_per_cpu_s, 1)
        return body

    def summary(self) -> str:
        requested = f"{self.requested_rate:,.0f} events/s" if self.requested_rate else "as fast as possible"
        text = (
            f"feed done in {self.elapsed:.1f} s ({self.mode}, {self.scenario}, {self.processes} process"
            f"{'es' if self.processes != 1 else ''}): delivered {self.delivered_events:,} events "
            f"({self.events_per_s:,.0f}/s) with {self.delivered_changes:,} level changes "
            f"({self.changes_per_s:,.0f}/s); requested {requested}; "
            f"produced {self.produced_events:,}, failed {self.failed_events:,}, "
            f"unconfirmed {self.undelivered_events:,}; seed {self.seed}"
        )
        if self.injected:
            faults = ", ".join(f"{k} {v:,}" for k, v in sorted(self.injected.items()) if ":" not in k)
            text += f"; injected {faults}"
        if not self.kept_up:
            share = self.events_per_s / self.requested_rate
            text += (
                f"\nfeed could NOT keep up: achieved {share:.0%} of the requested rate "
                "(see docs/feed.md: --max-actions, --processes)"
            )
        return text


def merge_reports(reports: list[FeedReport], elapsed: float, requested_rate: float) -> FeedReport:
    """One report of a multi-process run: counts summed, rates over the common ``elapsed``."""
    injected: dict[str, int] = {}
    for report in reports:
        for kind, count in report.injected.items():
            injected[kind] = injected.get(kind, 0) + count
    first = reports[0]
    return FeedReport(
        seed=first.seed,
        requested_rate=requested_rate,
        elapsed=elapsed,
        produced_events=sum(r.produced_events for r in reports),
        delivered_events=sum(r.delivered_events for r in reports),
        delivered_changes=sum(r.delivered_changes for r in reports),
        failed_events=sum(r.failed_events for r in reports),
        undelivered_events=sum(r.undelivered_events for r in reports),
        scenario=first.scenario,
        mode=first.mode,
        processes=len(reports),
        pairs=sum(r.pairs for r in reports),
        injected=injected,
        injected_delivered=sum(r.injected_delivered for r in reports),
        generate_elapsed=max(r.generate_elapsed for r in reports),
        cpu_seconds=sum(r.cpu_seconds for r in reports),
    )


class Progress:
    """A progress line every ``interval`` seconds: delivered rates over the last interval.

    ``read`` returns the running totals ``(delivered events, delivered changes, failed)``;
    the behind-schedule figure makes a generator that cannot keep up visible at once.
    The newest one is :attr:`latest`, where the metrics exporter (:mod:`feed_simulator.metrics`)
    reads the running run's totals, whichever way (generated, replayed, parallel) it runs.
    """

    latest: ClassVar[Progress | None] = None

    def __init__(self, read: Callable[[], tuple[int, int, int]], interval: float, now: float) -> None:
        Progress.latest = self
        self._read = read
        self._interval = interval
        self._next = now + interval
        self._last = (now, 0, 0)

    def due(self, now: float) -> bool:
        return now >= self._next

    def totals(self) -> tuple[int, int, int]:
        """Delivered events, delivered level changes and failures so far."""
        return self._read()

    def report(self, now: float, queued: int | None = None, behind: int | None = None) -> None:
        events, changes, failed = self._read()
        then, last_events, last_changes = self._last
        span = max(now - then, 1e-9)
        extra = "" if queued is None else f", {queued:,} queued"
        extra += "" if behind is None else f", {behind:,} behind schedule"
        log.info(
            "feed: %s events/s, %s level changes/s delivered over the last %.1f s "
            "(total %s events, %s failed%s)",
            f"{(events - last_events) / span:,.0f}",
            f"{(changes - last_changes) / span:,.0f}",
            span,
            f"{events:,}",
            f"{failed:,}",
            extra,
        )
        self._last = (now, events, changes)
        self._next = max(self._next + self._interval, now + self._interval / 2)
