"""Prometheus metrics of the feed (``BOOKCAST_FEED_METRICS_PORT``, ``/metrics``).

The figures are the feed's own, counted from broker confirmations (the same totals as its
progress lines, :attr:`feed_simulator.report.Progress.latest`), read at scrape time: the
send loop does not change. The exporter runs in a thread (``prometheus_client``); a port
already taken is logged and skipped, the feed runs regardless.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from feed_simulator.report import Progress
from mdcore.settings import env_int, env_str

log = logging.getLogger(__name__)

DEFAULT_PORT = 9102
Totals = Callable[[], tuple[int, int, int] | None]


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0: no exporter


def load_metrics_config(env: Mapping[str, str] = os.environ) -> MetricsConfig:
    return MetricsConfig(
        host=env_str(env, "BOOKCAST_METRICS_HOST", "127.0.0.1"),
        port=env_int(env, "BOOKCAST_FEED_METRICS_PORT", DEFAULT_PORT, 0, 65535),
    )


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


class FeedMetrics:
    """Registry and exporter of one feed process."""

    def __init__(self, totals: Totals = running_totals) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(FeedCollector(totals))
        ProcessCollector(registry=self.registry)
        self._server: Any = None

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, cfg: MetricsConfig) -> bool:
        """Start the exporter thread; False (after a warning) if disabled or the port is taken."""
        if cfg.port <= 0:
            return False
        try:
            self._server, _thread = start_http_server(cfg.port, cfg.host, registry=self.registry)
        except OSError as exc:
            log.warning("metrics: cannot listen on %s:%d (%s); running without /metrics", cfg.host, cfg.port,
                        exc.strerror or exc)  # fmt: skip
            return False
        log.info("metrics on http://%s:%d/metrics", cfg.host, self.port)
        return True

    @property
    def port(self) -> int | None:
        return self._server.server_port if self._server is not None else None

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
