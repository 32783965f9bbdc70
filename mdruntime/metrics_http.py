"""Every tier's Prometheus exporter: its settings, its life (start, port, stop), latency histograms.

The feed, md_service and the gateway each had their own copy of the settings (a tier's
``BOOKCAST_*_METRICS_PORT``, ``BOOKCAST_METRICS_HOST``), of the exporter's start and stop and
of the conversion of :class:`mdcore.latency.LatencyHistogram` counts into Prometheus
histograms. The feed and md_service serve ``/metrics`` from a thread of their own
(:class:`ThreadedExporter`); the gateway serves it from its event loop (so a scrape never reads
the hub from another thread) and shares the rest. A port already taken is a warning, never
an error: a tier runs without ``/metrics`` rather than not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import HistogramMetricFamily

from mdcore.latency import EXPORT_BOUNDS_S, LatencyHistogram
from mdcore.settings import env_int, env_str

HOST_ENV = "BOOKCAST_METRICS_HOST"
DEFAULT_HOST = "127.0.0.1"
_BOUNDS_US = [round(b * 1_000_000) for b in EXPORT_BOUNDS_S]


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Where a process serves ``/metrics``; port 0: no exporter."""

    host: str = DEFAULT_HOST
    port: int = 0

    @property
    def enabled(self) -> bool:
        return self.port > 0


def load_metrics_config(env: Mapping[str, str], port_key: str, default_port: int) -> MetricsConfig:
    """The tier's port from ``port_key`` (0-65535, 0 = none), the host from ``BOOKCAST_METRICS_HOST``;
    a malformed value is a :class:`mdcore.settings.SettingError`."""
    return MetricsConfig(
        host=env_str(env, HOST_ENV, DEFAULT_HOST), port=env_int(env, port_key, default_port, 0, 65535)
    )


def log_serving(logger: logging.Logger, host: str, port: int) -> None:
    logger.info("metrics on http://%s:%d/metrics", host, port)


def log_cannot_listen(logger: logging.Logger, cfg: MetricsConfig, exc: OSError) -> None:
    logger.warning(
        "metrics: cannot listen on %s:%d (%s); running without /metrics",
        cfg.host,
        cfg.port,
        exc.strerror or exc,
    )


class ThreadedExporter:
    """A registry and its ``/metrics`` server on a thread of its own (``prometheus_client``).

    Subclasses build the registry (their collectors) and pass it in; ``logger`` is the
    tier's, so the exporter's lines read as the tier's own.
    """

    def __init__(self, registry: CollectorRegistry, logger: logging.Logger) -> None:
        self.registry = registry
        self._log = logger
        self._server: Any = None

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, cfg: MetricsConfig) -> bool:
        """Start the exporter thread; False (after a warning) if disabled or the port is taken."""
        if not cfg.enabled:
            return False
        try:
            self._server, _thread = start_http_server(cfg.port, cfg.host, registry=self.registry)
        except OSError as exc:
            log_cannot_listen(self._log, cfg, exc)
            return False
        log_serving(self._log, cfg.host, self._server.server_port)
        return True

    @property
    def port(self) -> int | None:
        """The exporter's port (the real one when ``cfg.port`` asked for any), None if not serving."""
        return self._server.server_port if self._server is not None else None

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _buckets(histogram: LatencyHistogram) -> list[tuple[str, float]]:
    cumulative = histogram.cumulative(_BOUNDS_US)
    buckets = [(repr(b), float(n)) for b, n in zip(EXPORT_BOUNDS_S, cumulative, strict=True)]
    buckets.append(("+Inf", float(histogram.count)))
    return buckets


def histogram_family(name: str, documentation: str, histogram: LatencyHistogram) -> HistogramMetricFamily:
    """One Prometheus histogram (seconds) read from a :class:`LatencyHistogram`'s counts."""
    return HistogramMetricFamily(
        name, documentation, buckets=_buckets(histogram), sum_value=histogram.sum_us / 1_000_000
    )


def labelled_histogram_family(
    name: str, documentation: str, label: str, histograms: Mapping[str, LatencyHistogram]
) -> HistogramMetricFamily:
    """One Prometheus histogram (seconds) per ``label`` value, as :func:`histogram_family`."""
    family = HistogramMetricFamily(name, documentation, labels=[label])
    for value, histogram in histograms.items():
        family.add_metric([value], _buckets(histogram), histogram.sum_us / 1_000_000)
    return family
