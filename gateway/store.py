"""The seam between the gateway and the stream store: what a hub needs, and nothing more.

md_service keeps every pair's stream in a store (:mod:`mdcore.redis_layout`); a gateway
subscribes to the pairs its clients want, receives each window's raw deltas, reads a
consistent book, reads history after a seq, and needs to know whether the link is healthy.
Three implementations satisfy it, and one contract suite (``tests/contract``) runs against
each: a single Redis (:class:`gateway.redis_link.RedisLink`), a Redis Cluster with sharded
Pub/Sub (:class:`gateway.cluster_link.ClusterLink`), and memory
(:class:`gateway.memory_store.MemoryStore`, for unit tests of the hub).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol

from mdcore.local_book import LocalBook
from mdcore.messages import StreamPosition

OnMessage = Callable[[str, bytes], None]  # (pair, one delta's client-facing bytes)
# The link lost messages of these pairs (a reconnect, a moved slot): the hub catches them up.
OnResubscribed = Callable[[Collection[str]], Awaitable[None]]


class BookStore(Protocol):
    """What the hub needs from the stream store (see the module docstring)."""

    up: bool  # every subscriber connection is up and subscribed
    down_since: float | None  # monotonic time the link went down; None while up
    client: Any  # redis-py asyncio client (single or cluster) for the status bus; None in memory

    async def subscribe(self, pairs: list[str]) -> None:
        """Subscribe ``pairs``; return once the store confirmed (history read later sees them)."""

    def unsubscribe(self, pair: str) -> None: ...

    @property
    def wanted(self) -> frozenset[str]: ...

    async def run(self) -> None:
        """Receive forever, reconnecting after any loss; calls back on every (re)subscribe."""

    async def load_book(self, pair: str) -> LocalBook | None:
        """The pair's book at md_service's last seq (one atomic read); None: no stream."""

    async def read_history(self, pair: str, epoch: str, seq: int) -> list[tuple[int, bytes]] | None:
        """Deltas after ``seq`` of ``epoch``; None if history does not reach that far back."""

    async def read_positions(self, pairs: list[str]) -> dict[str, StreamPosition | None]: ...

    async def known_pairs(self) -> set[str]: ...

    def bound_reads(self, max_connections: int, pool_wait_s: float, max_history_read: int) -> None: ...

    def health(self) -> dict[str, Any]:
        """Per node: up or down (and since when), for ``/health`` and the metrics."""

    async def close(self) -> None: ...


StoreFactory = Callable[[Any, Any, OnMessage, OnResubscribed], BookStore]  # (cfg, counters, …)
