"""``bookcast load`` on the status bus: what the clients receive, for the live dashboard.

With ``--redis-url`` (or ``REDIS_URL``) the load generator's parent writes, after every
round of its workers' reports (about once a second), ``{prefix}:status:load:<id>``
(:mod:`mdcore.status_bus`): rates over the round, integrity totals, open connections and
the latency of the round's deltas at the clients — window close → receipt and exchange
time → receipt. The workers' HdrHistograms are converted into the bus's shared bucket
layout (:class:`mdcore.latency.LatencyHistogram`), so the gateway's dashboard merges the
clients of several load generators exactly. Redis trouble is logged once and never stops
the run.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from hdrh.histogram import HdrHistogram

from clients.load.stats import Latencies, LoadCounters
from mdcore.latency import LatencyHistogram
from mdcore.status_bus import (
    STATUS_VERSION,
    latency_block,
    rates,
)
from mdruntime.redis_connect import redis_client
from mdruntime.status_bus import write_status

log = logging.getLogger("clients.load")

RATES = {
    "frames_per_s": "frames",
    "bytes_per_s": "bytes",
    "messages_per_s": "messages",
    "deltas_per_s": "deltas",
    "snapshots_per_s": "snapshots",
    "gaps_per_s": "gaps",
    "resyncs_per_s": "resyncs",
    "disconnects_per_s": "disconnects",
    "checksum_failures_per_s": "checksum_failures",
}
RETRY_AFTER_S = 10.0
TOTALS = ("gaps", "resyncs", "deltas", "frames", "epoch_changes", "checksum_failures", "disconnects")


def from_hdr(hdr: HdrHistogram) -> LatencyHistogram:
    """An HdrHistogram (µs) in the status bus's bucket layout (each value at its HDR bucket's top)."""
    out = LatencyHistogram()
    for item in hdr.get_recorded_iterator():
        out.record_many(item.value_iterated_to, item.count_added_in_this_iter_step)
    return out


def load_status(
    instance: str,
    t_ms: int,
    interval_s: float,
    totals: LoadCounters,
    before: LoadCounters,
    open_connections: int,
    connections: int,
    interval: Latencies,
) -> dict[str, Any]:
    """The status of one round, from the merged counters and the round's histograms."""
    now, then = totals.as_dict(), before.as_dict()
    picked_now = {name: now[field] for name, field in RATES.items()}
    picked_then = {name: then[field] for name, field in RATES.items()}
    return {
        "v": STATUS_VERSION,
        "kind": "load",
        "id": instance,
        "t": t_ms,
        "interval_s": interval_s,
        "rates": rates(picked_now, picked_then, interval_s),
        "totals": {name: now[name] for name in TOTALS},
        "open": open_connections,
        "connections": connections,
        "latency": {
            "close_to_client": latency_block(from_hdr(interval.window)),
            "exchange_to_client": latency_block(from_hdr(interval.exchange)),
        },
    }


class StatusPublisher:
    """Writes the load generator's status (see the module docstring); synchronous, in the parent."""

    def __init__(self, redis_url: str, prefix: str, instance: str, interval_s: float) -> None:
        self.prefix = prefix
        self.instance = instance
        self.interval_s = interval_s
        # a cluster node's URL gets a cluster client (the bus's keys share one slot)
        self.client = redis_client(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.errors = 0
        self.published = 0
        self._retry_at = 0.0  # after a failure, skip statuses until then: a dead Redis must not slow rounds

    def publish(self, status: dict[str, Any]) -> None:
        if time.monotonic() < self._retry_at:
            return
        try:
            write_status(self.client, self.prefix, "load", self.instance, status, self.interval_s)
        except (redis.RedisError, OSError) as exc:
            self.errors += 1
            self._retry_at = time.monotonic() + RETRY_AFTER_S
            if self.errors == 1:
                log.warning("status bus: %s (the run goes on without it)", exc)
            return
        self.published += 1

    def close(self) -> None:
        self.client.close()
