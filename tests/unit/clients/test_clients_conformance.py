"""The conformance kit (tests/conformance/) played against the Python BookClient.

Every case file is played over real WebSockets on loopback by tests/conformance/runner.py;
the TypeScript client plays the same files (clients/js/test/conformance.test.ts). The crafted
files must be what tests/conformance/generate.py writes, so that the kit and its generator
never drift apart.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.crafted import crafted
from tests.conformance.kit import all_cases, read_case
from tests.conformance.runner import run_case

CASES = list(all_cases())


def test_the_kit_has_every_case_the_issue_asks_for() -> None:
    names = {path.stem for path in CASES}
    assert {
        "recorded_stream", "normal_stream", "packed_frames", "gap", "new_epoch", "checksum_mismatch",
        "stale_delta", "duplicate_after_snapshot", "since_recovered", "since_not_recovered",
        "subscribe_refused", "close_1001", "close_4008", "close_1008",
    } <= names  # fmt: skip


def test_the_crafted_cases_are_what_the_generator_writes() -> None:
    for path, text in crafted().items():
        assert path.exists(), f"{path.name} is missing: python -m tests.conformance.generate"
        assert path.read_text() == text, f"{path.name} is stale: python -m tests.conformance.generate"


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
async def test_the_python_client_passes(path: Path) -> None:
    await run_case(read_case(path))
