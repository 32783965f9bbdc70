"""Fixtures of the client tests: a scripted gateway on loopback and a source book."""

from __future__ import annotations

import pytest

from tests.unit.clients.scripted_server import ScriptedServer, SourceBook


@pytest.fixture
async def server():
    async with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def source() -> SourceBook:
    return SourceBook.with_depth("BTC-USD", levels=10)
