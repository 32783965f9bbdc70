"""The embedded Redis Cluster is a real Valkey cluster: slot routing, sharded Pub/Sub, failover.

Issue 14 moves Pub/Sub to sharded channels on a Redis Cluster; these tests pin down that the
cluster the other tests and ``bookcast up --redis-cluster N`` will use behaves like one.
"""

import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from bookcast.embedded_cluster import SLOT_COUNT, ClusterNodeInfo, EmbeddedRedisCluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

WAIT = 15.0  # bound for every wait on the cluster (automatic failover takes ~1.5 s)


def wait_for(what: str, probe: Callable[[], object], timeout: float = WAIT) -> object:
    """Poll ``probe`` until it returns something truthy without a Redis error; return that."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = probe()
        except redis.RedisError as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """True if the pid runs; a zombie counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def cluster_client(cluster: EmbeddedRedisCluster) -> RedisCluster:
    seeds = [ClusterNode(host, int(port)) for host, port in (s.split(":") for s in cluster.seeds.split(","))]
    return RedisCluster(startup_nodes=seeds, decode_responses=True)


def tag_on(primary: ClusterNodeInfo) -> str:
    """A hash tag whose slot ``primary`` serves, so keys and channels land on that shard."""
    for i in range(10_000):
        tag = f"{{t{i}}}"
        if primary.owns(key_slot(tag.encode())):
            return tag
    raise AssertionError(f"no tag found for {primary}")


def primaries(cluster: EmbeddedRedisCluster) -> list[ClusterNodeInfo]:
    return [n for n in cluster.nodes if n.role == "primary" and n.slots]


@pytest.fixture
def cluster() -> Iterator[EmbeddedRedisCluster]:
    with EmbeddedRedisCluster(primaries=3, replicas=1) as started:
        yield started


@pytest.fixture
def client(cluster) -> Iterator[RedisCluster]:
    rc = cluster_client(cluster)
    yield rc
    rc.close()


def test_cluster_forms_with_every_slot_covered_and_stops_every_process():
    with EmbeddedRedisCluster() as cluster:
        nodes = cluster.nodes
        prims = [n for n in nodes if n.role == "primary"]
        reps = [n for n in nodes if n.role == "replica"]
        assert len(prims) == 3 and len(reps) == 3
        assert sorted(r.primary_id for r in reps) == sorted(p.node_id for p in prims)
        ranges = sorted(r for p in prims for r in p.slots)
        assert ranges[0][0] == 0 and ranges[-1][1] == SLOT_COUNT - 1
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))  # no gap, no overlap
        pids = [n.pid for n in nodes]
        assert None not in pids and len(set(pids)) == 6

        for node in nodes:
            info = cluster.client(node).cluster("INFO")
            assert info["cluster_state"] == "ok"
            assert int(info["cluster_slots_assigned"]) == SLOT_COUNT
            assert int(info["cluster_slots_ok"]) == SLOT_COUNT
            assert int(info["cluster_known_nodes"]) == 6
            assert int(info["cluster_size"]) == 3

        assert cluster.seeds == ",".join(p.address for p in prims)
        assert cluster.url == f"redis://{prims[0].address}"
        assert cluster.primary_for_slot(0).node_id == prims[0].node_id
        assert cluster.primary_for_slot(SLOT_COUNT - 1).node_id == prims[-1].node_id
        line = cluster.describe()
        assert "\n" not in line and line.count("primary") == 3 and line.count("replica of") == 3
    assert not any(alive(pid) for pid in pids)


def test_slot_routed_keys_and_sharded_pubsub_on_every_primary(cluster, client):
    for primary in primaries(cluster):
        tag = tag_on(primary)
        key = f"book:{tag}:BTC-USD"
        assert client.set(key, primary.node_id)
        assert client.get(key) == primary.node_id
        assert cluster.primary_for_key(key).node_id == primary.node_id
        assert cluster.client(primary).get(key) == primary.node_id  # stored on that shard

    # The subscriber talks straight to the node owning the channel's slot; the publisher is
    # another client that routes SPUBLISH by slot. A ClusterPubSub subscribes as well.
    channel = f"ticks:{{{uuid.uuid4().hex[:8]}}}"
    owner = cluster.primary_for_key(channel)
    raw = cluster.client(owner).pubsub()
    sharded = client.pubsub()
    publisher = cluster_client(cluster)
    try:
        raw.ssubscribe(channel)
        sharded.ssubscribe(channel)
        for subscriber in (raw, sharded):  # both subscriptions confirmed before the publish
            confirm = wait_for("a subscription", lambda s=subscriber: s.get_sharded_message(timeout=0.2))
            assert confirm["type"] == "ssubscribe"
        assert publisher.spublish(channel, "tick-1") == 2

        got = wait_for("the raw subscriber's message", lambda: raw.get_sharded_message(timeout=0.2))
        assert (got["type"], got["channel"], got["data"]) == ("smessage", channel, "tick-1")
        got = wait_for(
            "the cluster subscriber's message",
            lambda: sharded.get_sharded_message(ignore_subscribe_messages=True, timeout=0.2),
        )
        assert (got["type"], got["data"]) == ("smessage", "tick-1")
    finally:
        raw.close()
        sharded.close()
        publisher.close()


def test_killed_primary_fails_over_to_its_replica_and_rejoins_as_replica(cluster, client):
    victim = primaries(cluster)[1]
    (replica,) = cluster.replicas_of(victim)
    key = f"book:{tag_on(victim)}:ETH-USD"
    pipe = cluster.client(victim).pipeline(transaction=False)  # WAIT counts this connection's writes
    pipe.set(key, "before-the-kill")
    pipe.execute_command("WAIT", 1, 1000)
    assert pipe.execute() == [True, 1]
    assert client.get(key) == "before-the-kill"

    killed_at = time.monotonic()
    cluster.kill(victim)
    assert not alive(victim.pid)
    assert cluster.node(victim.port).pid is None
    promoted = wait_for("the replica's promotion", lambda: cluster.primary_for_key(key).port == replica.port)
    took = time.monotonic() - killed_at
    cluster.wait_ok(WAIT)
    print(f"automatic failover took {took:.2f}s (node timeout {cluster.node_timeout_ms} ms)")
    assert promoted and took < WAIT
    assert set(cluster.node(replica.port).slots) == set(victim.slots)

    # The same client finds the new primary once its slot map is refreshed.
    assert wait_for("the key through the cluster client", lambda: client.get(key)) == "before-the-kill"
    assert client.set(key, "after-the-failover")

    rejoined = cluster.restart(victim)
    assert rejoined.node_id == victim.node_id and rejoined.pid not in (None, victim.pid)
    assert rejoined.role == "replica" and rejoined.primary_id == replica.node_id
    assert client.get(key) == "after-the-failover"


@pytest.mark.parametrize("takeover", [True, False], ids=["takeover", "coordinated"])
def test_manual_failover_of_a_healthy_shard_swaps_roles(cluster, client, takeover):
    primary = primaries(cluster)[2]
    (replica,) = cluster.replicas_of(primary)
    key = f"book:{tag_on(primary)}:SOL-USD"
    assert client.set(key, "v1")

    promoted = cluster.failover(replica, takeover=takeover)
    assert promoted.role == "primary" and set(promoted.slots) == set(primary.slots)
    demoted = cluster.node(primary.port)
    assert demoted.role == "replica" and demoted.primary_id == replica.node_id
    assert demoted.pid == primary.pid  # the same process, only its role changed
    assert cluster.primary_for_key(key).port == replica.port
    assert wait_for("the key on the new primary", lambda: client.get(key)) == "v1"
    assert client.set(key, "v2") and cluster.client(promoted).get(key) == "v2"
