"""A Redis Cluster primary dies mid-stream: its replica takes over, and every book still heals.

The real feed, md_service and gateway run on a 3-primary, 3-replica embedded cluster. The
primary that owns the most pairs is killed (SIGKILL). The cluster promotes its replica by
itself; replication is asynchronous, so the replica may lack the last window writes. md_service
must notice (a stored position older than its own, or a write counter below the one it
recorded) and continue those pairs in a new epoch instead of republishing seqs clients
already hold with other content; the gateway must re-subscribe the moved pairs on the new
primary and catch them up. Asserted on verifying clients: every book ends equal to the
source (rebuilt from Kafka) at md_service's last seq, no (pair, epoch, seq) was held with two
different books, each pair of the killed primary was dark for less than a bound (the figures
are printed), and the pairs of the healthy primaries kept flowing meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest

from bookcast.embedded_cluster import EmbeddedRedisCluster
from mdcore.instruments import default_pairs
from tests.integration.cluster_helpers import assert_books_heal, cluster_env, flowing
from tests.integration.stack_helpers import wait_until_async

pytestmark = pytest.mark.integration

PAIRS = tuple(default_pairs(16))
PARTITIONS = 8
RATE = 300
DARK_BOUND_S = 20.0  # generous for a shared 2-core machine; the figures are printed


@pytest.fixture
def cluster() -> Iterator[EmbeddedRedisCluster]:
    with EmbeddedRedisCluster(primaries=3, replicas=1, node_timeout_ms=1000) as started:
        yield started


async def test_a_killed_primary_fails_over_and_every_book_heals(infra, cluster) -> None:
    env, topic, layout = cluster_env(infra, cluster, "clfail", PAIRS, PARTITIONS)
    by_owner: dict[int, list[str]] = defaultdict(list)
    for pair in PAIRS:
        by_owner[cluster.primary_for_key(layout.tag(layout.partition(pair))).port].append(pair)
    victim_port, victim_pairs = max(by_owner.items(), key=lambda kv: len(kv[1]))
    async with flowing(env, PAIRS, RATE, 33, PARTITIONS, steady=20) as (witness, _gateway, stop_feed):
        fault = time.monotonic()
        # (in a thread: the clients run on this event loop and must keep reading meanwhile)
        await asyncio.to_thread(cluster.kill, cluster.node(victim_port))
        await asyncio.to_thread(cluster.wait_ok, 30)
        promoted = time.monotonic() - fault
        await wait_until_async(
            lambda: witness.flowing_since(fault + promoted), timeout=60,
            what="every pair to flow again after the failover",
        )  # fmt: skip
        healed = time.monotonic()
        dark = {p: round(witness.dark_s(p, fault, healed), 2) for p in victim_pairs}
        others = {p: round(witness.dark_s(p, fault, healed), 2) for p in PAIRS if p not in victim_pairs}
        worst_other = max(others.values())
        print(f"\nfailover: replica promoted {promoted:.2f} s after the kill; dark per pair of the "
              f"killed primary: {dark}; the other pairs at most {worst_other:.2f} s")  # fmt: skip
        assert max(dark.values()) < DARK_BOUND_S, dark
        assert worst_other < promoted, others  # pairs on the healthy primaries kept flowing
        stop_feed()
        await assert_books_heal(infra.kafka_bootstrap, cluster, topic, layout, witness)
