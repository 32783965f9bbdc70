"""A slot moves to another primary mid-stream (a resharding): no client sees an unannounced gap.

While the real feed, md_service and gateway run on a 3-primary embedded cluster, the slot of
the partition holding the most pairs is migrated with its keys (``CLUSTER SETSLOT``,
``MIGRATE``). md_service's writes for it meet ``ASK``/``TRYAGAIN``/``MOVED`` and are retried
with the next windows while the other partitions go on; the old node ends the gateway's
sharded subscriptions of that slot (a ``sunsubscribe`` push), and the gateway subscribes the
pairs on the new owner and fills what it missed from history. Clients must see no gap (every
delta contiguous, or a snapshot), no checksum failure, and books equal to the source.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest
from redis.crc import key_slot

from bookcast.embedded_cluster import EmbeddedRedisCluster
from mdcore.instruments import default_pairs
from tests.integration.cluster_helpers import assert_books_heal, cluster_env, flowing
from tests.integration.stack_helpers import wait_until_async

pytestmark = pytest.mark.integration

PAIRS = tuple(default_pairs(16))
PARTITIONS = 8
RATE = 300


@pytest.fixture
def cluster() -> Iterator[EmbeddedRedisCluster]:
    with EmbeddedRedisCluster(primaries=3, replicas=0) as started:
        yield started


def gateway_counters(http_url: str) -> dict[str, int]:
    try:
        with urllib.request.urlopen(f"{http_url}/health", timeout=5) as answer:
            body = answer.read()
    except urllib.error.HTTPError as refused:  # 503 while not ready: the body is the same report
        body = refused.read()
    return json.loads(body)["counters"]


async def test_a_moved_slot_heals_without_an_unannounced_gap(infra, cluster) -> None:
    env, topic, layout = cluster_env(infra, cluster, "clmove", PAIRS, PARTITIONS, gateway_workers="1")
    busiest, _ = Counter(layout.partition(p) for p in PAIRS).most_common(1)[0]
    moved_pairs = [p for p in PAIRS if layout.partition(p) == busiest]
    slot = key_slot(layout.tag(busiest).encode())
    source = cluster.primary_for_slot(slot)
    target = next(n for n in cluster.nodes if n.role == "primary" and n.port != source.port)
    async with flowing(env, PAIRS, RATE, 44, PARTITIONS) as (witness, gateway, stop_feed):
        start = time.monotonic()
        await asyncio.to_thread(cluster.move_slot, slot, target)  # the clients keep reading meanwhile
        moved = time.monotonic()
        await wait_until_async(lambda: witness.flowing_since(moved), timeout=30, what="all pairs to flow")
        dark = {p: round(witness.dark_s(p, start, time.monotonic()), 2) for p in moved_pairs}
        print(f"\nslot {slot} (partition {busiest}) moved {source.port} -> {target.port} in "
              f"{moved - start:.2f} s; dark per pair of it: {dark}")  # fmt: skip
        counters = gateway_counters(gateway.http_url)
        assert counters.get("channels_dropped_by_server", 0) + counters.get("redis_pairs_moved", 0) >= 1
        stop_feed()
        await assert_books_heal(infra.kafka_bootstrap, cluster, topic, layout, witness)
        for client in witness.clients:
            assert client.stats.gaps == 0, client.stats.as_dict()  # never an unannounced gap
