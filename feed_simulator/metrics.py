"""Prometheus metrics of the feed (``BOOKCAST_FEED_METRICS_PORT``, ``/metrics``).

The figures are the feed's own, counted from broker confirmations (the same totals as its
progress lines, :attr:`feed_simulator.report.Progress.latest`), read at scrape time: the
send loop does not change. The exporter runs in a thread (:mod:`mdruntime.metrics_http`);
a port already taken is logged and skipped, the feed runs regardless.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from feed_simulator.report import Progress
from mdruntime import metrics_http
from mdruntime.metrics_http import MetricsConfig, ThreadedExporter

log = logging.getLogger(__name__)

DEFAULT_PORT = 9102
Totals = Callable[[], tuple[int, int, int] | None]


def load_metrics_config(env: Mapping[str, str] = os.environ) -> MetricsConfig:
    """``BOOKCAST_FEED_METRICS_PORT`` (0: none), ``BOOKCAST_METRICS_HOST``."""
    return metrics_http.load_metrics_config(env, "BOOKCAST_FEED_METRICS_PORT", DEFAULT_PORT)


def running_totals() -> tuple[int, int, int] | None:
    """This process's feed run so far (events, changes, failures), None before it starts."""
    progress = Progress.latest
    return progress.totals() if progress is not None else None


class FeedCollector:
    def __init__(self, totals: Totals) -> None:
        self._totals = totals

    def collect(self) -> Iterator[Metric]:
        totals = self._totals()
        events, changes, failed = totals if totals is not None else (0, 0, 0)
        running = int(totals is not None)
        yield GaugeMetricFamily("bookcast_feed_up", "1 once the feed is producing", value=running)
        yield CounterMetricFamily(
            "bookcast_feed_events_total", "exchange events the broker confirmed", value=events
        )
        yield CounterMetricFamily(
            "bookcast_feed_changes_total", "level changes in the confirmed events", value=changes
        )
        yield CounterMetricFamily(
            "bookcast_feed_failed_total", "messages the broker refused or that timed out", value=failed
        )


class FeedMetrics(ThreadedExporter):
    """Registry and exporter of one feed process."""

    def __init__(self, totals: Totals = running_totals) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FeedCollector(totals))
        ProcessCollector(registry=registry)
        super().__init__(registry, log)
