"""Prometheus metrics of one md_service instance (``BOOKCAST_MD_METRICS_PORT``, ``/metrics``).

md_service's loop stays as it is: every count and both window latencies come from
:class:`md_service.counters.MdCounters` (read at scrape time by a custom collector; the
latencies are those the status bus reports, :class:`md_service.counters.WindowLatency`),
the Redis link from the service's outage clock, the Kafka link from
:class:`md_service.kafka_link.KafkaLink`, the consumer lag from the Kafka client's own
bookkeeping.

The consumer lag is read with ``get_watermark_offsets(cached=True)``: the high watermark
that came with the last fetch. (Asking the broker — ``cached=False`` — is wrong on Tansu,
which answers with the last batch's base offset.) The exporter runs in a thread of its
own (:mod:`mdruntime.metrics_http`); a port already taken is logged and skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mdruntime import metrics_http
from mdruntime.metrics_http import MetricsConfig, ThreadedExporter, histogram_family

if TYPE_CHECKING:
    from md_service.kafka_link import KafkaLink
    from md_service.service import MdService

log = logging.getLogger(__name__)

DEFAULT_PORT = 9101

# exported name (without _total) -> (MdCounters attribute, help)
COUNTERS: dict[str, tuple[str, str]] = {
    "windows": ("windows", "window writes Redis accepted"),
    "windows_late": ("windows_late", "windows closed late because the loop fell behind"),
    "deltas": ("deltas", "deltas published"),
    "published_bytes": ("published_bytes", "bytes of the deltas published"),
    "snapshots": ("snapshots", "snapshots stored"),
    "level_changes": ("level_changes", "level changes carried by the applied events"),
    "exchange_gaps": ("exchange_gaps", "times a pair's exchange sequence (xseq) jumped forward"),
    "epochs_started": ("epochs_started", "new epochs (a pair's first start, or Redis lost its state)"),
    "pairs_refused": ("pairs_refused", "writes refused because Redis held another position"),
    "writes_lost": ("writes_lost", "partitions claimed whose Redis had lost writes it confirmed"),
    "partitions_lost": ("partitions_lost", "partitions fenced: another instance owns them now"),
    "takeovers": ("takeovers", "partitions taken over because their writer released them or went silent"),
    "takeovers_cold": ("takeovers_cold", "takeovers restored from Redis, not continued from warm books"),
    "releases": ("releases", "partitions given away by a clean stop"),
    "redis_errors": ("redis_errors", "failed Redis calls (retried)"),
    "partition_writes_failed": (
        "partition_writes_failed",
        "partition windows not written because their Redis Cluster node was down (the next window retries)",
    ),
    "kafka_errors": ("kafka_errors", "Kafka errors seen by the consumer"),
    "dead_lettered": ("dead_lettered", "malformed messages sent to the dead-letter topic"),
}
# outcome label of bookcast_md_events_total -> MdCounters attribute
OUTCOMES = {
    "applied": "events_applied",
    "duplicate": "events_duplicate",
    "late": "events_late",
    "invalid": "events_invalid",
    "unowned": "events_unowned",
}


def load_metrics_config(env: Mapping[str, str] = os.environ) -> MetricsConfig:
    """``BOOKCAST_MD_METRICS_PORT`` (0: none), ``BOOKCAST_METRICS_HOST``."""
    return metrics_http.load_metrics_config(env, "BOOKCAST_MD_METRICS_PORT", DEFAULT_PORT)


def consumer_lag(service: MdService) -> dict[int, int] | None:
    """Per owned partition: messages in Kafka not yet consumed; None if the consumer cannot tell.

    Uses the high watermark the last fetch brought (``cached=True``) and the consumer's
    position; a partition with neither yet is left out. Safe from another thread: both
    are librdkafka's local bookkeeping.
    """
    consumer = getattr(service.source, "consumer", None)
    if consumer is None:
        return None
    try:
        lag: dict[int, int] = {}
        for tp in consumer.position(consumer.assignment()):
            _low, high = consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                lag[tp.partition] = max(0, high - tp.offset)
        return lag
    except Exception:  # closed consumer, broker trouble: no figure this time
        return None


def kafka_link(service: MdService) -> KafkaLink | None:
    """The service's view of the Kafka link; None when its source keeps none (a test double)."""
    return getattr(service.source, "link", None)


def kafka_up(service: MdService) -> bool | None:
    """True while the brokers answer, False while they do not, None if unknown; safe from another thread."""
    link = kafka_link(service)
    return None if link is None else link.down_since is None


class MdCollector:
    """Reads the service at scrape time; docs/observability.md lists every name."""

    def __init__(self, service: MdService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        service = self.service
        c = service.counters
        events = CounterMetricFamily(
            "bookcast_md_events_total", "exchange events consumed, by what became of them", labels=["outcome"]
        )
        for outcome, attr in OUTCOMES.items():
            events.add_metric([outcome], getattr(c, attr))
        yield events
        for name, (attr, doc) in COUNTERS.items():
            yield CounterMetricFamily(f"bookcast_md_{name}_total", doc, value=getattr(c, attr))
        invalid = CounterMetricFamily(
            "bookcast_md_invalid_events_total", "malformed messages skipped, by kind", labels=["kind"]
        )
        for kind, n in sorted(dict(c.invalid).items()):
            invalid.add_metric([kind], n)
        yield invalid
        up = 1 if service.redis_down_since is None else 0
        yield GaugeMetricFamily("bookcast_md_redis_up", "1 unless Redis calls are failing", value=up)
        kafka = kafka_up(service)
        if kafka is not None:
            yield GaugeMetricFamily(
                "bookcast_md_kafka_up", "1 while a Kafka broker answers the consumer", value=int(kafka)
            )
        yield GaugeMetricFamily("bookcast_md_pairs", "pair streams owned", value=len(service.streams))
        owned = len(service.ownership.owned_numbers())
        yield GaugeMetricFamily("bookcast_md_partitions", "Kafka partitions written here", value=owned)
        following = len(service.ownership.partitions) - owned
        yield GaugeMetricFamily(
            "bookcast_md_partitions_following", "Kafka partitions read warm, written by another instance",
            value=following,
        )  # fmt: skip
        lag = consumer_lag(service)
        if lag is not None:
            per_partition = GaugeMetricFamily(
                "bookcast_md_consumer_lag",
                "Kafka messages not yet consumed, per owned partition (high watermark - position)",
                labels=["partition"],
            )
            for p, n in sorted(lag.items()):
                per_partition.add_metric([str(p)], n)
            yield per_partition
        hists = c.latency.histograms
        yield histogram_family(
            "bookcast_md_exchange_to_close_seconds",
            "earliest exchange time of a window (xts) to its close (ts), per published delta",
            hists["exchange_to_close"],
        )
        yield histogram_family(
            "bookcast_md_window_publish_seconds",
            "window close (ts) to Redis acknowledging the window's atomic write, per published delta",
            hists["close_to_publish"],
        )


class MdMetrics(ThreadedExporter):
    """Registry and exporter of one md_service process."""

    def __init__(self) -> None:
        registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=registry)
        super().__init__(registry, log)
        self._bound = False

    def bind(self, service: MdService) -> MdMetrics:
        """Export ``service``'s figures (once)."""
        if not self._bound:
            self.registry.register(MdCollector(service))
            self._bound = True
        return self
