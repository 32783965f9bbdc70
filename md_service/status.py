"""md_service on the status bus: a small JSON status every second, for the live dashboard.

A daemon thread (the service's loop is single-threaded on purpose and stays so) reads the
counters, the consumer lag, the Redis and Kafka links and the interval's latencies, and writes
``{prefix}:status:md:<instance>`` with a TTL of a few seconds (:mod:`mdcore.status_bus`).
It has its own Redis connection with short timeouts: a slow or absent Redis delays only
the status, never a window. :func:`md_status` builds the payload from plain values.
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

from md_service.metrics import consumer_lag, kafka_up, owned_partitions
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

# status rate name -> MdCounters attribute
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
    counters: Mapping[str, int],
    before: Mapping[str, int],
    lag: Mapping[int, int] | None,
    redis_up: bool,
    pairs: int,
    partitions: list[int],
    latency: Mapping[str, LatencyHistogram],
    kafka_up: bool | None = None,
) -> dict[str, Any]:
    """The status of one interval, from plain values (counters by :class:`MdCounters` attribute).

    ``kafka_up`` None (a service without a Kafka link, as in tests) is reported as ``unknown``.
    """
    now = {name: counters.get(attr, 0) for name, attr in RATES.items()}
    then = {name: before.get(attr, 0) for name, attr in RATES.items()}
    return {
        "v": STATUS_VERSION,
        "kind": "md",
        "id": instance,
        "t": t_ms,
        "interval_s": interval_s,
        "rates": rates(now, then, interval_s),
        "totals": {name: counters.get(name, 0) for name in TOTALS},
        "consumer_lag": sum(lag.values()) if lag is not None else None,
        "lag_by_partition": {str(p): n for p, n in sorted(lag.items())} if lag is not None else None,
        "redis": "up" if redis_up else "down",
        "kafka": "unknown" if kafka_up is None else "up" if kafka_up else "down",
        "pairs": pairs,
        "partitions": partitions,
        "latency": {stage: latency_block(hist) for stage, hist in latency.items()},
    }


def _counter_values(service: MdService) -> dict[str, int]:
    c = service.counters
    return {attr: getattr(c, attr) for attr in {*RATES.values(), *TOTALS}}


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
        self._before = _counter_values(service)
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
        counters = _counter_values(service)
        status = md_status(
            service.cfg.instance, time.time_ns() // 1_000_000, round(now - self._before_at, 3), counters,
            self._before, consumer_lag(service), service.redis_down_since is None, len(service.streams),
            owned_partitions(service), {s: r.take() for s, r in self._readers.items()}, kafka_up(service),
        )  # fmt: skip
        self._before, self._before_at = counters, now
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
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self.client.close()
