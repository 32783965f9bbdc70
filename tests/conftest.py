"""Shared fixtures: one embedded Kafka + Redis for the whole test session."""

from collections.abc import Iterator

import pytest

from bookcast.embedded import EmbeddedInfra


@pytest.fixture(scope="session")
def infra() -> Iterator[EmbeddedInfra]:
    """Real Tansu (Kafka) and Valkey (Redis) on loopback, started once, stopped at the end.

    Tests must isolate themselves by name (unique topics, group ids, channels, key prefixes)
    because the servers are shared.
    """
    with EmbeddedInfra() as started:
        yield started
