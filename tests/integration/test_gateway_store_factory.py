"""Which store a gateway opens: a ``REDIS_URL`` that is a cluster node means the cluster.

``REDIS_CLUSTER`` selects the cluster explicitly (the cluster tests start gateways that way);
this checks the other way in, asked once at start-up against real servers: a cluster node,
a single Redis, and a Redis that cannot be reached (single-server mode, as documented).
"""

from __future__ import annotations

import pytest

from gateway.config import GatewayConfig
from gateway.store_factory import detect_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_a_redis_url_that_is_a_cluster_node_selects_the_cluster(redis_cluster) -> None:
    cfg = await detect_cluster(GatewayConfig(redis_url=redis_cluster.url))
    host_port = redis_cluster.url.removeprefix("redis://")
    assert cfg.redis_cluster == (host_port,)


async def test_a_single_redis_or_an_unreachable_one_stays_single(infra) -> None:
    single = GatewayConfig(redis_url=infra.redis.url)
    assert await detect_cluster(single) == single
    unreachable = GatewayConfig(redis_url="redis://127.0.0.1:1/0")
    assert await detect_cluster(unreachable) == unreachable


async def test_explicit_seeds_are_kept_as_given(redis_cluster) -> None:
    cfg = GatewayConfig(redis_url=redis_cluster.url, redis_cluster=tuple(redis_cluster.seeds.split(",")))
    assert await detect_cluster(cfg) == cfg
