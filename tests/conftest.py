"""Shared fixtures: one embedded Kafka + Redis for the whole test session."""

import os
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


@pytest.fixture(scope="session", autouse=True)
def md_state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """md_service processes started by tests keep their write marks here, not in the user's home."""
    os.environ.setdefault("BOOKCAST_MD_STATE_DIR", str(tmp_path_factory.mktemp("md-state")))
