"""Fixtures of the client tests: a scripted gateway on loopback and a source book."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# ``scripted_server`` lives here; the repository root goes first so that ``clients`` is always the
# package, never this test directory of the same name seen as a namespace package.
for entry in (HERE, HERE.parents[2]):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from scripted_server import ScriptedServer, SourceBook  # noqa: E402  (needs the path above)


@pytest.fixture
async def server():
    async with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def source() -> SourceBook:
    return SourceBook.with_depth("BTC-USD", levels=10)
