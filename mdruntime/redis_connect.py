"""How every tier reaches Redis: a single server or a Redis Cluster, from the same settings.

``REDIS_CLUSTER`` (seed nodes ``host:port,…``) selects a cluster; a ``REDIS_URL`` whose server
answers ``cluster_enabled:1`` does too (asked once, when the client is made). The URL's
credentials and TLS apply to every node. redis-py's cluster client follows ``MOVED`` and
``ASK`` and re-reads the slot map after a failover; scripts and pipelines whose keys share a
hash slot (every key of one Kafka partition does, :mod:`mdcore.redis_layout`) run as on a
single server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.connection import SSLConnection, parse_url
from redis.exceptions import AskError, ClusterDownError, MasterDownError, MovedError, TryAgainError

from mdcore.settings import host_port

log = logging.getLogger(__name__)

SyncRedis = redis.Redis | RedisCluster


def _seed_nodes(seeds: Sequence[str]) -> list[ClusterNode]:
    return [ClusterNode(*host_port(seed)) for seed in seeds]


def url_options(url: str) -> dict[str, Any]:
    """The credentials and TLS of a ``redis://`` / ``rediss://`` URL, for a cluster client."""
    params = parse_url(url)
    options: dict[str, Any] = {}
    if params.get("username"):
        options["username"] = params["username"]
    if params.get("password"):
        options["password"] = params["password"]
    if params.get("connection_class") is SSLConnection:
        options["ssl"] = True
    return options


def is_cluster(url: str, timeout: float = 2.0) -> bool:
    """Whether the server at ``url`` is a Redis Cluster node; False if it cannot be asked."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.info("cluster").get("cluster_enabled"))
    except (redis.RedisError, OSError) as exc:
        log.warning("cannot ask %s whether it is a cluster (%s): single server assumed", url, exc)
        return False
    finally:
        client.close()


def redis_client(url: str, cluster: Sequence[str] = (), **kwargs: Any) -> SyncRedis:
    """A synchronous client: a cluster client when ``cluster`` seeds are given or ``url`` is a
    cluster node, else a plain one. ``kwargs`` are redis-py connection options (timeouts)."""
    if cluster:
        return RedisCluster(startup_nodes=_seed_nodes(cluster), **url_options(url), **kwargs)
    if is_cluster(url):
        return RedisCluster.from_url(url, **kwargs)
    return redis.Redis.from_url(url, **kwargs)


ScriptCall = tuple[Script, Sequence[str], Sequence[Any]]  # (script, keys, args)


def run_scripts(
    client: SyncRedis, calls: Sequence[ScriptCall], transaction: bool = False, partial: bool = False
) -> list[Any]:
    """Run each script call, all in one pipeline per server; the replies in call order.

    ``partial`` (a cluster only): a node that cannot be reached does not fail the others; each
    of its calls' replies is the exception instead, so the callers on healthy nodes go on (and
    a caller that writes one partition at a time is not held up by a node that is down).

    redis-py's cluster pipeline refuses scripts, so on a cluster the calls are grouped by the
    node that owns each call's first key (every key of a call shares a hash slot) and sent on
    that node's own connection. A reply that says the slot moved (``MOVED``, a failover) or a
    lost node makes the client read the slot map again before the error goes to the caller,
    whose retry then reaches the new owner.
    """
    if not calls:
        return []
    if not isinstance(client, RedisCluster):
        pipe = client.pipeline(transaction=transaction)
        for script, keys, args in calls:
            script(keys=keys, args=args, client=pipe)
        return pipe.execute()
    by_node: dict[str, tuple[Any, list[int]]] = {}
    for i, (_script, keys, _args) in enumerate(calls):
        node = client.get_node_from_key(keys[0])
        by_node.setdefault(node.name, (node, []))[1].append(i)
    replies: list[Any] = [None] * len(calls)
    failed: Exception | None = None
    for node, indexes in by_node.values():
        pipe = client.get_redis_connection(node).pipeline(transaction=transaction)
        for i in indexes:
            script, keys, args = calls[i]
            script(keys=keys, args=args, client=pipe)
        try:
            for i, reply in zip(indexes, pipe.execute(), strict=True):
                replies[i] = reply
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
            if isinstance(exc, redis.ResponseError) and not _moved(exc):
                raise
            failed = exc
            for i in indexes:
                replies[i] = exc
            if not partial:
                break
    if failed is not None:
        _refresh_slots(client)  # the slot map changed: the next call (or retry) goes to the new owner
        if not partial:
            raise failed
    return replies


_SLOT_ELSEWHERE = (MovedError, AskError, TryAgainError, ClusterDownError, MasterDownError)


def _moved(exc: redis.ResponseError) -> bool:
    """The node says the slot is (being) served elsewhere, or the cluster is mid-failover.

    (A pipeline reports its first error with "Command # N (…) of pipeline caused error: …"
    in front, so the class, not the text's start, tells.)"""
    return isinstance(exc, _SLOT_ELSEWHERE)


def _refresh_slots(client: RedisCluster) -> None:
    """Read the slot map again; if no node answers now, the next failure tries again."""
    try:
        client.nodes_manager.initialize()
    except (redis.RedisError, OSError) as exc:
        log.debug("cannot read the cluster's slot map now: %s", exc)
