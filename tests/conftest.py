"""Shared fixtures: one embedded Kafka + Redis (and one Redis Cluster) for the whole test session."""

import os
from collections.abc import Iterator

import pytest

from bookcast.embedded import EmbeddedInfra
from bookcast.embedded_cluster import EmbeddedRedisCluster


@pytest.fixture(scope="session")
def infra() -> Iterator[EmbeddedInfra]:
    """Real Tansu (Kafka) and Valkey (Redis) on loopback, started once, stopped at the end.

    Tests must isolate themselves by name (unique topics, group ids, channels, key prefixes)
    because the servers are shared.
    """
    with EmbeddedInfra() as started:
        yield started


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[EmbeddedRedisCluster]:
    """A real 3-primary Valkey cluster (no replicas: nothing here fails over) on loopback.

    Shared like ``infra``: tests isolate themselves by key prefix and must not kill nodes
    (failover tests start a cluster of their own).
    """
    with EmbeddedRedisCluster(primaries=3, replicas=0) as started:
        yield started


@pytest.fixture(scope="session", autouse=True)
def md_state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """md_service processes started by tests keep their write marks here, not in the user's home."""
    os.environ.setdefault("BOOKCAST_MD_STATE_DIR", str(tmp_path_factory.mktemp("md-state")))


@pytest.fixture(scope="session", autouse=True)
def gateway_overload_for_a_crowded_machine() -> None:
    """Gateways started by tests refuse handshakes for load only when their loop is 1.5 s late.

    The suite runs dozens of processes on two cores: a gateway's loop then runs late because
    the machine is starved, not because the gateway has too much work, and its 503s (a
    correct answer to that) would make tests about other things wait out ``Retry-After``.
    The overload rule has tests of its own (tests/unit/gateway/core/test_gateway_overload.py).
    """
    os.environ.setdefault("BOOKCAST_GATEWAY_OVERLOAD_ENTER_MS", "1500")
