"""The gateway's link to a Redis Cluster: sharded Pub/Sub on the node that owns each pair's slot.

Every key and channel of a Kafka partition shares one hash slot (:mod:`mdcore.redis_layout`),
and md_service publishes with ``SPUBLISH``, which the cluster delivers only on the node that
owns the channel's slot. So the link keeps one watched subscriber connection per primary that
owns a wanted pair (:class:`gateway.node_subscription.NodeSubscription`) and sends each pair's
``SSUBSCRIBE`` there. Reads go through redis-py's cluster client, which follows ``MOVED``.

The slot map is the cluster's, read with redis-py's node manager, and checked again every
``topology_s`` and at once when something suggests it changed: a node that cannot be reached,
a subscribe the node refused (``MOVED``), or a ``sunsubscribe`` the node pushed unasked (its
slot moved, during a resharding or a failover). A pair whose node changed is subscribed on
the new one and then caught up from history like after any reconnect, so a moved slot is a
gap that heals, never a silent one. Pairs on healthy nodes keep flowing meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
from redis.crc import key_slot
from redis.exceptions import RedisError

from gateway.core.counters import Counters
from gateway.node_subscription import SUBSCRIBE_TIMEOUT_S, NodeAddress, NodeSubscription
from gateway.redis_link import node_address
from gateway.store import OnMessage, OnResubscribed
from gateway.store_reads import ReadsThrough, StoreReads
from mdcore.redis_layout import RedisLayout
from mdcore.settings import host_port

log = logging.getLogger(__name__)

TOPOLOGY_S = 2.0  # the slot map is read again this often, and at once on any sign of change …
DOWN_TOPOLOGY_S = 0.25  # … and this often while a node is down
MAX_BACKOFF_S = 5.0


class ClusterLink(ReadsThrough):
    """A Redis Cluster: one subscriber connection per primary that owns a wanted pair's slot."""

    def __init__(
        self,
        url: str,
        seeds: Collection[str],
        layout: RedisLayout,
        counters: Counters,
        on_message: OnMessage,
        on_resubscribed: OnResubscribed,
        ping_s: float = 1.0,
        dead_s: float = 3.0,
        topology_s: float = TOPOLOGY_S,
        max_connections: int = 32,
    ) -> None:
        self.layout = layout
        self.counters = counters
        credentials = node_address(url)
        self._credentials = credentials
        nodes = [ClusterNode(*host_port(seed)) for seed in seeds] or [
            ClusterNode(credentials.host, credentials.port)
        ]
        self.client = aioredis.RedisCluster(
            startup_nodes=nodes, username=credentials.username, password=credentials.password,
            ssl=credentials.use_ssl, max_connections=max_connections, socket_connect_timeout=2.0,
            socket_timeout=5.0,
        )  # fmt: skip
        self.reads = StoreReads(self.client, layout)
        self._on_message = on_message
        self._on_resubscribed = on_resubscribed
        self._ping_s, self._dead_s, self._topology_s = ping_s, dead_s, topology_s
        self._wanted: set[str] = set()
        self._route: dict[str, str] = {}  # pair -> name of the node subscription carrying it
        self._nodes: dict[str, NodeSubscription] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slot_of_partition = [key_slot(layout.tag(p).encode()) for p in range(layout.partitions)]
        self._changed = asyncio.Event()
        self._ready = False  # the slot map was read at least once
        self._started = time.monotonic()
        self.topology_refreshes = 0

    # --- the seam ------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self._ready and all(n.up for n in self._nodes.values())

    @property
    def down_since(self) -> float | None:
        """Since when some wanted pair has had no live subscription (None: all flow)."""
        if not self._ready:
            return self._started
        down = [n.down_since for n in self._nodes.values() if not n.up and n.down_since is not None]
        return min(down) if down else None

    @property
    def wanted(self) -> frozenset[str]:
        return frozenset(self._wanted)

    async def subscribe(self, pairs: list[str]) -> None:
        new = [p for p in pairs if p not in self._wanted]
        self._wanted.update(new)
        if new and self._ready:
            await self._place(new)

    def unsubscribe(self, pair: str) -> None:
        if pair not in self._wanted:
            return
        self._wanted.discard(pair)
        name = self._route.pop(pair, None)
        if name is not None and name in self._nodes:
            self._nodes[name].unsubscribe([pair])

    def bound_reads(self, max_connections: int, pool_wait_s: float, max_history_read: int) -> None:
        """The cluster client bounds connections per node itself; history reads are bounded here."""
        self.reads.max_history_read = max_history_read

    def health(self) -> dict[str, Any]:
        return {
            "mode": "cluster",
            "slot_map": "known" if self._ready else "unknown",
            "slot_map_reads": self.topology_refreshes,
            "nodes": {name: node.health() for name, node in sorted(self._nodes.items())},
        }

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for node in self._nodes.values():
            node.abort()
        await self.client.aclose()

    # --- routing -------------------------------------------------------------------------

    def _owner(self, pair: str) -> ClusterNode:
        slot = self._slot_of_partition[self.layout.partition(pair)]
        node = self.client.nodes_manager.get_node_from_slot(slot)
        if node is None:
            raise RedisError(f"no node owns slot {slot}")
        return node

    def _node(self, host: str, port: int) -> NodeSubscription:
        name = f"{host}:{port}"
        node = self._nodes.get(name)
        if node is None:
            c = self._credentials
            node = NodeSubscription(
                NodeAddress(host, port, c.username, c.password, c.use_ssl), self.counters,
                lambda pair: self.layout.delta_channel(pair).encode(), self.layout.partition,
                self._on_message, self._on_resubscribed, self._ping_s, self._dead_s,
                on_dropped=self._dropped, on_failed=lambda _exc: self._changed.set(),
            )  # fmt: skip
            self._nodes[name] = node
            self._tasks[name] = asyncio.get_running_loop().create_task(node.run(), name=f"redis-sub-{name}")
        return node

    async def _place(self, pairs: Collection[str]) -> list[str]:
        """Subscribe each pair on the node owning its slot; returns the pairs that moved there
        from another node while that node was up (those must be caught up by the caller)."""
        by_node: dict[str, list[str]] = {}
        for pair in pairs:
            try:
                owner = self._owner(pair)
            except RedisError:
                self._changed.set()
                continue
            node = self._node(owner.host, owner.port)
            old = self._route.get(pair)
            if old == str(node.address):
                continue
            if old is not None and old in self._nodes:
                self._nodes[old].unsubscribe([pair])
            self._route[pair] = str(node.address)
            by_node.setdefault(str(node.address), []).append(pair)
        # Every node takes its pairs on before any wait, so that no node is ever routed to
        # without carrying them (a concurrent refresh retires the nodes that carry nothing).
        carried = [(self._nodes[name], self._nodes[name].carry(group)) for name, group in by_node.items()]
        moved: list[str] = []
        for node, new in carried:
            if node.up:
                await node.confirm(new)
                moved += new  # (a node that comes up catches its pairs up itself)
            else:  # a new connection subscribes what it carries: wait for that, bounded
                await node.confirm(new)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(node.ready.wait(), SUBSCRIBE_TIMEOUT_S)
        return moved

    def _dropped(self, pair: str) -> None:
        """A node ended the pair's subscription itself: its slot moved. Route it again."""
        name = self._route.pop(pair, None)
        if name is not None and name in self._nodes:
            self._nodes[name].unsubscribe([pair])
        self._changed.set()

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Read the slot map (retrying), place every wanted pair, then keep the map current."""
        delay = 0.1
        while True:
            try:
                await self._refresh()
                delay = 0.1
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("redis cluster: cannot read the slot map: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            # While a node is down, its slots are about to move (a replica is being promoted):
            # look again often, so its pairs resume within a few hundred ms of the promotion.
            wait_s = self._topology_s if self.up else min(self._topology_s, DOWN_TOPOLOGY_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait_s)
            self._changed.clear()

    async def _refresh(self) -> None:
        if self._ready:
            await self.client.nodes_manager.initialize()  # read CLUSTER SLOTS again
        else:
            await self.client.initialize()
            self._ready = True
        self.topology_refreshes += 1
        moved = await self._place([p for p in self._wanted])
        unrouted_before = [p for p in self._wanted if p not in self._route]
        if moved:
            self.counters["redis_pairs_moved"] += len(moved)
            log.warning("redis cluster: %d pairs changed node; catching them up", len(moved))
            await self._on_resubscribed(moved)
        self._retire_idle_nodes()
        if unrouted_before:
            self._changed.set()

    def _retire_idle_nodes(self) -> None:
        """Close subscriptions to nodes that carry no pair any more (a former primary)."""
        routed = set(self._route.values())
        for name in [n for n, node in self._nodes.items() if not node.pairs and n not in routed]:
            self._tasks.pop(name).cancel()
            self._nodes.pop(name).abort()
