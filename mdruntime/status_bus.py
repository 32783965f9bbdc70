"""Writing a status to the status bus: the same three commands from every tier.

md_service (a thread), the load generator (its parent process) and the gateway (asyncio)
each wrote ``SET key status PX ttl``, ``ZADD index key expiry`` and
``ZREMRANGEBYSCORE index -inf now`` with their own copy of the code. The keys, the TTL and
the payload's shape are :mod:`mdcore.status_bus`'s (pure); the writing, which needs a Redis
client, is here: :func:`queue_status` builds the commands on a pipeline, synchronous or
asyncio alike, and :func:`write_status` / :func:`write_status_async` send them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from mdcore.status_bus import encode_status, index_key, status_key, ttl_ms


class StatusPipeline(Protocol):
    """The pipeline commands a status write uses (redis-py's sync and asyncio pipelines have them)."""

    def set(self, name: str, value: bytes, px: int) -> Any: ...

    def zadd(self, name: str, mapping: Mapping[str, int]) -> Any: ...

    def zremrangebyscore(self, name: str, min: str, max: int) -> Any: ...


class SyncClient(Protocol):
    def pipeline(self, transaction: bool = True) -> Any: ...


class AsyncClient(Protocol):
    """An asyncio client: its pipeline is an async context manager whose ``execute`` is awaited."""

    def pipeline(self, transaction: bool = True) -> Any: ...


def queue_status(
    pipe: StatusPipeline,
    prefix: str,
    kind: str,
    instance: str,
    status: Mapping[str, Any],
    interval_s: float,
    now_ms: int | None = None,
) -> str:
    """Queue the write of one status on ``pipe``; the status's key.

    The key lives three intervals (:func:`mdcore.status_bus.ttl_ms`); the index scores it by
    that expiry, so readers skip it afterwards, and entries already expired are dropped.
    """
    key, index = status_key(prefix, kind, instance), index_key(prefix)
    ttl = ttl_ms(interval_s)
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    pipe.set(key, encode_status(status), px=ttl)
    pipe.zadd(index, {key: now_ms + ttl})
    pipe.zremrangebyscore(index, "-inf", now_ms)
    return key


def write_status(
    client: SyncClient, prefix: str, kind: str, instance: str, status: Mapping[str, Any], interval_s: float
) -> None:
    """Write one status with a synchronous client (one round trip, no transaction)."""
    pipe = client.pipeline(transaction=False)
    queue_status(pipe, prefix, kind, instance, status, interval_s)
    pipe.execute()


async def write_status_async(
    client: AsyncClient, prefix: str, kind: str, instance: str, status: Mapping[str, Any], interval_s: float
) -> None:
    """Write one status with an asyncio client (one round trip, no transaction)."""
    async with client.pipeline(transaction=False) as pipe:
        queue_status(pipe, prefix, kind, instance, status, interval_s)
        await pipe.execute()
