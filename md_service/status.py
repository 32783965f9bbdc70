"""md_service's status: one JSON document every second on the status bus, off the window loop.

A daemon thread (the service's loop is single-threaded on purpose and stays so) writes
``{prefix}:{status}:md:<instance>`` with a TTL of three intervals (:mod:`mdcore.status_bus`),
on its own Redis connection with short timeouts: a slow or absent Redis (or a Redis Cluster
node in failover) delays only the status, never a window. One document serves every reader:
the gateway's dashboard and md_service heartbeat read its rates, latencies, lag and links;
operators, the chaos harness and the tests read the same document's counters and ownership
(:meth:`MdService.status`). :func:`md_status` builds it from plain values. A clean stop
writes one last status, so the final counts (releases, windows) can be read after it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from md_service.metrics import consumer_lag
from mdcore.latency import IntervalReader, LatencyHistogram
from mdcore.settings import env_float
from mdcore.status_bus import (
    DEFAULT_INTERVAL_S,
    STATUS_VERSION,
    latency_block,
    rates,
)
from mdruntime.redis_connect import redis_client
from mdruntime.status_bus import write_status

if TYPE_CHECKING:
    from md_service.service import MdService

log = logging.getLogger(__name__)

# status rate name -> MdCounters attribute (a key of MdCounters.as_dict())
RATES = {
    "events_per_s": "events_applied",
    "changes_per_s": "level_changes",
    "duplicates_per_s": "events_duplicate",
    "invalid_per_s": "events_invalid",
    "windows_per_s": "windows",
    "deltas_per_s": "deltas",
    "bytes_per_s": "published_bytes",
    "snapshots_per_s": "snapshots",
}
TOTALS = ("events_applied", "deltas", "windows", "epochs_started", "exchange_gaps", "redis_errors")


@dataclass(frozen=True, slots=True)
class StatusConfig:
    interval_s: float = DEFAULT_INTERVAL_S  # 0: publish no status


def load_status_config(env: Mapping[str, str] = os.environ) -> StatusConfig:
    """``BOOKCAST_STATUS_BUS_S``: seconds between statuses (0 = none)."""
    return StatusConfig(env_float(env, "BOOKCAST_STATUS_BUS_S", DEFAULT_INTERVAL_S, 0.0, 60.0))


def md_status(
    instance: str,
    t_ms: int,
    interval_s: float,
    before: Mapping[str, Any],
    lag: Mapping[int, int] | None,
    latency: Mapping[str, LatencyHistogram],
    state: Mapping[str, Any],
) -> dict[str, Any]:
    """The status of one interval, from plain values.

    ``state`` is the instance's own (:meth:`MdService.status`: links, ownership, pairs and
    ``counters``), carried as it is; ``before`` its counters one interval ago, for the rates.
    """
    counters: Mapping[str, Any] = state.get("counters", {})
    now = {name: counters.get(attr, 0) for name, attr in RATES.items()}
    then = {name: before.get(attr, 0) for name, attr in RATES.items()}
    return {
        **state,
        "v": STATUS_VERSION,
        "kind": "md",
        "id": instance,
        "t": t_ms,
        "interval_s": interval_s,
        "rates": rates(now, then, interval_s),
        "totals": {name: counters.get(name, 0) for name in TOTALS},
        "consumer_lag": sum(lag.values()) if lag is not None else None,
        "lag_by_partition": {str(p): n for p, n in sorted(lag.items())} if lag is not None else None,
        "latency": {stage: latency_block(hist) for stage, hist in latency.items()},
    }


class StatusPublisher:
    """The thread that writes this instance's status every ``interval_s`` (see the module docstring)."""

    def __init__(
        self,
        service: MdService,
        redis_url: str,
        prefix: str,
        cfg: StatusConfig,
        cluster: Sequence[str] = (),
    ) -> None:
        self.service = service
        self.cfg = cfg
        self.prefix = prefix
        self.client = redis_client(redis_url, cluster, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._readers = {stage: IntervalReader(h) for stage, h in service.counters.latency.histograms.items()}
        self._before: Mapping[str, Any] = service.counters.as_dict()
        self._before_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="md-status", daemon=True)
        self.errors = 0
        self.published = 0

    def start(self) -> StatusPublisher:
        if self.cfg.interval_s > 0:
            self._thread.start()
        return self

    def build(self) -> dict[str, Any]:
        service = self.service
        now = time.monotonic()
        state = service.status()
        status = md_status(
            service.cfg.instance, time.time_ns() // 1_000_000, round(now - self._before_at, 3), self._before,
            consumer_lag(service), {s: r.take() for s, r in self._readers.items()}, state,
        )  # fmt: skip
        self._before, self._before_at = state["counters"], now
        return status

    def publish_once(self) -> None:
        status = self.build()
        write_status(self.client, self.prefix, "md", str(status["id"]), status, self.cfg.interval_s)
        self.published += 1

    def _run(self) -> None:
        while not self._stop.wait(self.cfg.interval_s):
            try:
                self.publish_once()
            except (redis.RedisError, OSError) as exc:
                self.errors += 1
                if self.errors == 1 or self.errors % 60 == 0:
                    log.warning("status bus: %s (the service is not affected)", exc)
            except Exception:  # a status is an aid: never let it end the thread quietly
                log.exception("status bus: building the status failed")

    def stop(self) -> None:
        """End the thread, then write the last status (after the service stopped: its final counts)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
            try:
                self.publish_once()
            except (redis.RedisError, OSError) as exc:
                log.warning("status bus: the last status was not written: %s", exc)
        self.client.close()
