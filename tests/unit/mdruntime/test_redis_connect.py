"""mdruntime.redis_connect, the parts that need no Redis: URL options, seeds, the moved-slot test,
a single server's pipeline, and a server that cannot be asked.

The cluster paths talk to a real Redis Cluster and are covered there:
``tests/integration/test_md_store.py`` (every store call through ``run_scripts`` on a 3-primary
cluster from ``REDIS_CLUSTER`` seeds, ``partial`` replies included), ``test_cluster_pipeline.py``
(a cluster found from a node's ``REDIS_URL``: ``is_cluster`` true, ``stack_helpers.stored_book``),
``test_cluster_failover.py`` and ``test_cluster_slot_move.py`` (``MOVED`` and a failover:
``_moved`` and the slot map read again).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.exceptions import AskError, ClusterDownError, MasterDownError, MovedError, TryAgainError

from mdruntime.redis_connect import _moved, _seed_nodes, is_cluster, redis_client, run_scripts, url_options


def test_a_urls_credentials_and_tls_carry_over_to_a_cluster_client() -> None:
    assert url_options("rediss://alice:s3cret@redis.example:6380/0") == {
        "username": "alice", "password": "s3cret", "ssl": True,
    }  # fmt: skip
    assert url_options("redis://:s3cret@127.0.0.1:7000") == {"password": "s3cret"}
    assert url_options("redis://127.0.0.1:7000/0") == {}


def test_seed_nodes_are_host_and_port_each() -> None:
    nodes = _seed_nodes(["127.0.0.1:7000", "redis-b.example:7001"])
    assert [(n.host, n.port) for n in nodes] == [("127.0.0.1", 7000), ("redis-b.example", 7001)]


@pytest.mark.parametrize("error", [MovedError, AskError, TryAgainError, ClusterDownError, MasterDownError])
def test_a_slot_served_elsewhere_or_mid_failover_is_moved(error: type[redis.ResponseError]) -> None:
    assert _moved(error("3999 127.0.0.1:6381"))


def test_other_script_errors_are_not_moved() -> None:
    assert not _moved(redis.ResponseError("Command # 1 (EVALSHA) of pipeline caused error: MOVED"))
    assert not _moved(redis.ResponseError("ERR Error running script"))


class Pipeline:
    def __init__(self, transaction: bool) -> None:
        self.transaction = transaction
        self.queued: list[tuple[str, list[str], list[Any]]] = []

    def execute(self) -> list[Any]:
        return [f"{name}:{keys[0]}" for name, keys, _ in self.queued]


class Client:
    """A single server's client: pipelines only (not a RedisCluster)."""

    def __init__(self) -> None:
        self.pipes: list[Pipeline] = []

    def pipeline(self, transaction: bool) -> Pipeline:
        self.pipes.append(Pipeline(transaction))
        return self.pipes[-1]


def script(name: str) -> Any:
    def call(keys: list[str], args: list[Any], client: Pipeline) -> None:
        client.queued.append((name, list(keys), list(args)))

    return call


def test_a_single_server_runs_every_call_in_one_pipeline_and_answers_in_call_order() -> None:
    client = Client()
    calls = [(script("claim"), ["k1"], [1]), (script("read"), ["k2"], []), (script("claim"), ["k3"], [3])]
    assert run_scripts(client, calls, transaction=True) == ["claim:k1", "read:k2", "claim:k3"]  # type: ignore[arg-type]
    (pipe,) = client.pipes
    assert pipe.transaction and pipe.queued == [
        ("claim", ["k1"], [1]),
        ("read", ["k2"], []),
        ("claim", ["k3"], [3]),
    ]


def test_no_calls_ask_nothing() -> None:
    client = Client()
    assert run_scripts(client, []) == [] and client.pipes == []  # type: ignore[arg-type]


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback port bound but not listening: a connection to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"redis://127.0.0.1:{s.getsockname()[1]}/0"


def test_a_server_that_cannot_be_asked_is_taken_for_a_single_server(
    refused_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "mdruntime.redis_connect"):
        assert is_cluster(refused_url, timeout=1.0) is False
    assert "single server assumed" in caplog.text
    client = redis_client(refused_url, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        assert type(client) is redis.Redis  # made without a connection; the first command would fail
    finally:
        client.close()
