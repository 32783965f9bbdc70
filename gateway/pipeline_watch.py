"""The I/O side of pair freshness: each applied delta's arrival, and md_service's heartbeat.

A hub listener (the hook the metrics' latency and the dialects use) notes when each pair's
deltas arrive; a loop reads the md_service statuses on the status bus every
``md_heartbeat_s``: the keys named in the bus index, in one round trip. The rules that turn
both into verdicts are pure (:mod:`gateway.core.freshness`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from gateway.core.freshness import ArrivalGaps, PipelineState
from gateway.hub import Hub
from mdcore.local_book import LocalBook
from mdcore.messages import Delta
from mdcore.status_bus import decode_status, index_key, status_key

log = logging.getLogger(__name__)


class PipelineWatch:
    def __init__(self, hub: Hub, clock: Callable[[], float] = time.monotonic) -> None:
        self.hub = hub
        self.clock = clock
        self.gaps = ArrivalGaps()
        self.pipeline = PipelineState()
        self.read_errors = 0
        self._md_prefix = status_key(hub.cfg.redis_prefix, "md", "").encode()

    def attach(self) -> PipelineWatch:
        """Start noting arrivals (registers with the hub as a stream listener)."""
        if self not in self.hub.listeners:
            self.hub.listeners.append(self)
        return self

    def on_delta(self, pair: str, delta: Delta) -> None:
        self.gaps.record(pair, self.clock())

    def on_reset(self, pair: str, local: LocalBook) -> None:
        """A reload is not a delta: the pair's rhythm is unchanged."""

    async def run(self) -> None:
        """Read md_service's heartbeat every ``md_heartbeat_s`` (never, if that is 0)."""
        period = self.hub.cfg.md_heartbeat_s
        if period <= 0:
            return
        while True:
            await asyncio.sleep(period)
            self.gaps.keep_only(self.hub.channels)
            if self.hub.link.up:
                await self.poll()

    async def poll(self) -> None:
        try:
            statuses = await asyncio.wait_for(self._read_md_statuses(), max(1.0, self.hub.cfg.md_heartbeat_s))
        except (RedisError, OSError, TimeoutError) as exc:
            self.read_errors += 1  # our own link's trouble, not md_service's: keep the last verdict
            if self.read_errors == 1 or self.read_errors % 60 == 0:
                log.warning("md_service heartbeat: cannot read the status bus: %s", exc)
            return
        self.pipeline.observe(statuses, self.clock())

    async def _read_md_statuses(self) -> list[dict[str, Any]]:
        client = self.hub.link.client
        keys = [k for k in await client.zrange(index_key(self.hub.cfg.redis_prefix), 0, -1)
                if k.startswith(self._md_prefix)]  # fmt: skip
        if not keys:
            return []
        found = (decode_status(raw) for raw in await client.mget(keys))  # expired keys read as None
        return [s for s in found if s is not None and s.get("kind") == "md"]
