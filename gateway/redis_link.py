"""The gateway's link to a single Redis: one sharded Pub/Sub connection, plus reads of books.

Subscriptions run on one watched connection (:mod:`gateway.node_subscription`: PING, a
deadline for any byte back, reconnect with backoff, resubscribe, then catch up); reads go
through a bounded pool (:mod:`gateway.store_reads`). A Redis Cluster has its own link with
the same interface (:mod:`gateway.cluster_link`); :mod:`gateway.store` is the seam.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool, SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError

from gateway.core.counters import Counters
from gateway.node_subscription import NodeAddress, NodeSubscription
from gateway.store import OnMessage, OnResubscribed
from gateway.store_reads import ReadsThrough, StoreReads
from mdcore.redis_layout import RedisLayout

MAX_CONNECTIONS = 32  # defaults of GatewayConfig.redis_max_connections …
POOL_WAIT_S = 1.0  # … and redis_pool_wait_s


class BoundedPool(BlockingConnectionPool):
    """At most ``max_connections`` connections; a read waits ``timeout`` s for one, then fails.

    The failure is :class:`MaxConnectionsError` (a ``RedisError``), so that callers can tell
    "too busy, retry soon" (REST: 503 with ``Retry-After``) from "Redis is unreachable".
    """

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)
        except RedisConnectionError as exc:
            if isinstance(exc.__cause__, TimeoutError):  # the wait for a free connection ran out
                raise MaxConnectionsError(
                    f"all {self.max_connections} Redis connections busy for {self.timeout}s"
                ) from exc
            raise


def node_address(url: str) -> NodeAddress:
    """Where a ``redis://`` or ``rediss://`` URL points, with its credentials."""
    params = parse_url(url)
    return NodeAddress(
        params.get("host", "localhost"), int(params.get("port", 6379)), params.get("username"),
        params.get("password"), params.get("connection_class") is SSLConnection,
    )  # fmt: skip


class RedisLink(ReadsThrough):
    """A single Redis server: one subscriber connection carries every wanted pair."""

    def __init__(
        self,
        url: str,
        layout: RedisLayout,
        counters: Counters,
        on_message: OnMessage,
        on_resubscribed: OnResubscribed,
        ping_s: float = 1.0,
        dead_s: float = 3.0,
    ) -> None:
        self.layout = layout
        self.counters = counters
        self.client = aioredis.Redis.from_pool(
            BoundedPool.from_url(
                url, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S,
                socket_connect_timeout=5.0, socket_timeout=5.0,
            )
        )  # fmt: skip
        self.reads = StoreReads(self.client, layout)
        self.node = NodeSubscription(
            node_address(url), counters, lambda pair: layout.delta_channel(pair).encode(), layout.partition,
            on_message, on_resubscribed, ping_s, dead_s, on_dropped=self._dropped,
        )  # fmt: skip

    @property
    def up(self) -> bool:
        return self.node.up

    @property
    def down_since(self) -> float | None:
        return self.node.down_since

    @property
    def wanted(self) -> frozenset[str]:
        return frozenset(self.node.pairs)

    async def subscribe(self, pairs: list[str]) -> None:
        await self.node.subscribe(pairs)

    def unsubscribe(self, pair: str) -> None:
        self.node.unsubscribe([pair])

    def _dropped(self, pair: str) -> None:
        """Only a cluster moves slots; a single server that ends a subscription is treated alike."""
        self.node.abort()  # the reconnect resubscribes and catches up

    async def run(self) -> None:
        await self.node.run()

    def bound_reads(self, max_connections: int, pool_wait_s: float, max_history_read: int) -> None:
        """Apply the settings that bound the load reads put on Redis (before the first read)."""
        pool = self.client.connection_pool
        pool.max_connections = max_connections
        if isinstance(pool, BlockingConnectionPool):
            pool.timeout = pool_wait_s
        self.reads.max_history_read = max_history_read

    def health(self) -> dict[str, Any]:
        return {"mode": "single", "nodes": {str(self.node.address): self.node.health()}}

    async def close(self) -> None:
        self.node.abort()
        await self.client.aclose()
