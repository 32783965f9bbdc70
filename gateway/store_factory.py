"""Which stream store a gateway talks to: a single Redis or a Redis Cluster, from the settings.

``REDIS_CLUSTER`` (seed nodes) selects the cluster; so does a ``REDIS_URL`` whose server says
``cluster_enabled:1`` (:func:`detect_cluster`, asked once at start-up).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from gateway.cluster_link import ClusterLink
from gateway.config import GatewayConfig
from gateway.core.counters import Counters
from gateway.redis_link import RedisLink, node_address
from gateway.store import BookStore, OnMessage, OnResubscribed
from mdcore.redis_layout import RedisLayout
from mdruntime.redis_connect import is_cluster

log = logging.getLogger(__name__)


def open_store(
    cfg: GatewayConfig, counters: Counters, on_message: OnMessage, on_resubscribed: OnResubscribed
) -> BookStore:
    layout = RedisLayout(cfg.redis_prefix, cfg.partitions)
    if cfg.redis_cluster:
        return ClusterLink(
            cfg.redis_url, cfg.redis_cluster, layout, counters, on_message, on_resubscribed,
            ping_s=cfg.redis_ping_s, dead_s=cfg.redis_dead_s, max_connections=cfg.redis_max_connections,
        )  # fmt: skip
    return RedisLink(
        cfg.redis_url, layout, counters, on_message, on_resubscribed,
        ping_s=cfg.redis_ping_s, dead_s=cfg.redis_dead_s,
    )  # fmt: skip


async def detect_cluster(cfg: GatewayConfig) -> GatewayConfig:
    """``cfg`` with ``redis_cluster`` set if ``REDIS_URL`` is a node of a cluster.

    Asked once, at start-up (:func:`mdruntime.redis_connect.is_cluster`, the check md_service
    makes too); if Redis cannot be reached now, the gateway starts in single-server mode and
    says so (set ``REDIS_CLUSTER`` to be explicit).
    """
    if cfg.redis_cluster or not await asyncio.to_thread(is_cluster, cfg.redis_url):
        return cfg
    node = node_address(cfg.redis_url)
    log.info("%s is a Redis Cluster node: cluster mode, seeded from it", cfg.redis_url)
    return dataclasses.replace(cfg, redis_cluster=(str(node),))
