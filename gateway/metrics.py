"""Prometheus metrics of one gateway process, on a port of its own (``/metrics``).

Nothing on the hot path changes for them: the counters the gateway keeps anyway
(:mod:`gateway.core.counters`) and its gauges (clients, subscriptions, replicas, the Redis link)
are read when Prometheus scrapes, by a custom collector. The one addition is latency:
a hub listener (the hook protocol dialects use too) reads each applied delta's window
close and exchange times from its bytes and records two histograms
(:mod:`mdcore.latency`), which the collector exports and the dashboard reads per second.

The exporter is served by the event loop itself (websockets' HTTP handling, as ``/health``
is), so a scrape never reads the hub's dictionaries from another thread. With
``--workers N`` worker ``i`` serves ``port + i``. A port already taken is logged and
skipped: the gateway serves its clients regardless.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from gateway.core.counters import HELP
from gateway.core.freshness import Freshness
from gateway.health import assess
from gateway.hub import Hub
from gateway.pipeline_watch import PipelineWatch
from mdcore.latency import LatencyHistogram
from mdcore.local_book import LocalBook
from mdcore.messages import Delta
from mdcore.settings import env_int
from mdruntime import metrics_http
from mdruntime.metrics_http import MetricsConfig, labelled_histogram_family, log_cannot_listen, log_serving

log = logging.getLogger(__name__)

DEFAULT_PORT = 9100
STAGES = ("close_to_gateway", "exchange_to_gateway")

# exported name (without _total) -> (counter of gateway/core/counters.py, help)
COUNTERS: dict[str, tuple[str, str]] = {
    "redis_messages": ("redis_messages", "Pub/Sub messages received for wanted pairs (md_service deltas in)"),
    "frames": ("frames_out", "WebSocket frames written to clients by the fan-out"),
    "bytes": ("bytes_out", "bytes written to clients by the fan-out, frame headers included"),
    "deltas_in": ("deltas_in", "deltas applied to replicas"),
    "deltas_out": ("deltas_out", "pair-deltas delivered to clients (a packed frame counts each)"),
    "conflations": ("slow_conflations", "slow clients healed by snapshots after draining"),
    "slow_disconnects": ("closed_slow", "clients closed with 4008 for staying slow too long"),
    "snapshots": ("snapshots_sent", "snapshot messages sent to clients"),
    "recoveries": ("recoveries", "pairs recovered from `since` without a snapshot"),
    "gaps": ("replica_gaps", "seq gaps seen on Pub/Sub"),
    "gaps_filled": ("replica_history_fills", "gaps filled from md_service's history"),
    "reloads": ("replica_reloads", "full book loads of a replica"),
    "resyncs": ("resyncs", "resync requests from clients"),
    "connections_opened": ("connections_opened", "WebSocket connections that completed the handshake"),
}


def load_metrics_config(env: Mapping[str, str] = os.environ) -> MetricsConfig:
    """``BOOKCAST_GATEWAY_METRICS_PORT`` (plus the worker's index), ``BOOKCAST_METRICS_HOST``."""
    cfg = metrics_http.load_metrics_config(env, "BOOKCAST_GATEWAY_METRICS_PORT", DEFAULT_PORT)
    worker = env_int(env, "BOOKCAST_GATEWAY_WORKER", 0, 0, 1024)
    port = cfg.port + worker if cfg.port and cfg.port + worker <= 65535 else 0
    return dataclasses.replace(cfg, port=port)


class LatencyListener:
    """A hub listener: window close → gateway and exchange → gateway of every applied delta."""

    def __init__(self, clock_ns: object = time.time_ns) -> None:
        self.histograms = {stage: LatencyHistogram() for stage in STAGES}
        self._close = self.histograms["close_to_gateway"]
        self._exchange = self.histograms["exchange_to_gateway"]
        self._clock_ns = clock_ns

    def on_delta(self, pair: str, delta: Delta) -> None:
        now = self._clock_ns()  # type: ignore[operator]
        self._close.record((now - delta.ts) // 1000)
        self._exchange.record((now - delta.xts) // 1000)

    def on_reset(self, pair: str, local: LocalBook) -> None:
        """A reload sends snapshots, not deltas: nothing to time."""


def freshness_families(hub: Hub, watch: PipelineWatch | None) -> Iterator[Metric]:
    """Readiness, md_service's heartbeat and every wanted pair's freshness, as ``/health`` has them."""
    found = assess(hub, watch)
    yield GaugeMetricFamily("bookcast_gateway_ready", "1 if /health says ready (200)", value=int(found.ready))
    pipeline = GaugeMetricFamily(
        "bookcast_gateway_pipeline", "md_service's heartbeat as this gateway sees it (1: the state)",
        labels=["state"],
    )  # fmt: skip
    for state in ("up", "down", "unknown"):
        pipeline.add_metric([state], int(found.pipeline.state == state))
    yield pipeline
    by_freshness = GaugeMetricFamily(
        "bookcast_gateway_pairs", "wanted pairs by freshness (live, quiet, overdue, stale, …)",
        labels=["freshness"],
    )  # fmt: skip
    for freshness in Freshness:
        by_freshness.add_metric([freshness.value], found.count(freshness))
    yield by_freshness
    stale = GaugeMetricFamily(
        "bookcast_gateway_pair_stale", "1 if the pair's book here may be out of date", labels=["pair"]
    )
    age = GaugeMetricFamily(
        "bookcast_gateway_pair_delta_age_seconds", "seconds since the pair's last delta here", labels=["pair"]
    )
    usual = GaugeMetricFamily(
        "bookcast_gateway_pair_usual_gap_seconds",
        "the pair's usual gap between deltas (90th percentile of recent ones), once known",
        labels=["pair"],
    )
    for pair, verdict in found.pairs.items():
        stale.add_metric([pair], int(verdict.freshness is Freshness.STALE))
        age.add_metric([pair], verdict.age_s)
        if verdict.usual_gap_s is not None:
            usual.add_metric([pair], verdict.usual_gap_s)
    yield stale
    yield age
    yield usual


class GatewayCollector:
    """Reads the hub at scrape time; see docs/observability.md for every name."""

    def __init__(self, hub: Hub, latency: LatencyListener, watch: PipelineWatch | None = None) -> None:
        self.hub = hub
        self.latency = latency
        self.watch = watch

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        counters = dict(hub.counters)
        gauges = {
            "connections": ("WebSocket clients connected", len(hub.sessions)),
            "subscriptions": (
                "client subscriptions (pairs summed over clients)",
                hub.subscriber_count(),
            ),
            "stale_clients": ("clients over the high-water mark (not fed deltas)",
                              sum(1 for s in hub.sessions if s.lagging)),
            "replicas": ("pairs with a local replica (wanted by a client)", len(hub.channels)),
            "replicas_live": ("replicas that are live",
                              sum(1 for c in hub.channels.values() if c.replica.live)),
            "redis_up": ("1 if the Redis Pub/Sub link answers its pings", 1 if hub.link.up else 0),
            "loop_lag_seconds": (
                "how late the event loop runs, smoothed over about 0.5 s (gateway.core.overload)",
                hub.overload.smoothed_s,
            ),
            "overloaded": ("1 while new handshakes are refused for loop lag (503)",
                           1 if hub.overload.overloaded else 0),
            "overload_entered": ("times the overload state was entered", hub.overload.entered),
        }  # fmt: skip
        for name, (doc, value) in gauges.items():
            yield GaugeMetricFamily(f"bookcast_gateway_{name}", doc, value=value)
        nodes = GaugeMetricFamily(
            "bookcast_gateway_redis_node_up",
            "1 per Redis node whose subscriber link is up (cluster: per primary)",
            labels=["node"],
        )  # fmt: skip
        for node, state in hub.link.health()["nodes"].items():
            nodes.add_metric([node], 1 if state["up"] else 0)
        yield nodes
        for name, (counter, doc) in COUNTERS.items():
            yield CounterMetricFamily(f"bookcast_gateway_{name}_total", doc, value=counters.get(counter, 0))
        errors = CounterMetricFamily(
            "bookcast_gateway_errors_total", "error answers by code", labels=["code"]
        )
        closes = CounterMetricFamily(
            "bookcast_gateway_closes_total", "connections ended, by close code", labels=["code"]
        )
        every = CounterMetricFamily(
            "bookcast_gateway_counter_total",
            "every count of gateway/core/counters.py, by name",
            labels=["name"],
        )
        for name, value in sorted(counters.items()):
            if name.startswith("errors_"):
                errors.add_metric([name.removeprefix("errors_")], value)
            elif name.startswith("closes_"):
                closes.add_metric([name.removeprefix("closes_")], value)
            elif name in HELP:
                every.add_metric([name], value)
        yield errors
        yield closes
        yield every
        yield from freshness_families(hub, self.watch)
        yield labelled_histogram_family(
            "bookcast_gateway_latency_seconds",
            "latency of each applied delta at this gateway, by stage (window close or exchange time → here)",
            "stage",
            self.latency.histograms,
        )


class GatewayMetrics:
    """The registry of one gateway process and its exporter."""

    def __init__(
        self, hub: Hub, latency: LatencyListener | None = None, watch: PipelineWatch | None = None
    ) -> None:
        self.hub = hub
        self.latency = latency or LatencyListener()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(GatewayCollector(hub, self.latency, watch))
        ProcessCollector(registry=self.registry)
        self.server: Server | None = None

    def attach(self) -> GatewayMetrics:
        """Start timing deltas (registers the latency listener with the hub)."""
        if self.latency not in self.hub.listeners:
            self.hub.listeners.append(self.latency)
        return self

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def response(self, request: Request) -> Response:
        if request.path.split("?", 1)[0] not in ("/metrics", "/"):
            body = b"not found; metrics are at /metrics\n"
            return Response(404, "Not Found", Headers([("Content-Type", "text/plain")]), body)
        body = self.render()
        headers = Headers([("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return Response(200, "OK", headers, body)

    async def serve(self, cfg: MetricsConfig) -> Server | None:
        """Serve ``/metrics`` on ``cfg``'s port; None (after a warning) if disabled or the port is taken."""
        if not cfg.enabled:
            return None

        async def process_request(_conn: ServerConnection, request: Request) -> Response:
            return self.response(request)

        async def refuse(conn: ServerConnection) -> None:  # never reached: every request is answered
            await conn.close()

        try:
            self.server = await serve(
                refuse, cfg.host, cfg.port, process_request=process_request, server_header="bookcast"
            )
        except OSError as exc:
            log_cannot_listen(log, cfg, exc)
            return None
        log_serving(log, cfg.host, cfg.port)
        return self.server

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
