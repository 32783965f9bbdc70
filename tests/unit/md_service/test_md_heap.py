"""md_service.heap: start-up's objects frozen out of the collector's way, young collections rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from md_service.heap import settle_heap


@pytest.fixture
def gc_state() -> Iterator[None]:
    """The collector as it was, afterwards: the rest of the test session must not inherit this."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_the_start_up_heap_is_frozen_and_the_young_generation_collected_less_often(gc_state: None) -> None:
    gc.unfreeze()
    survivor = [object() for _ in range(100)]  # start-up state that lives on
    settle_heap()
    assert gc.get_freeze_count() > 0  # moved to the permanent generation: no full collection walks it
    assert gc.get_threshold() == (10_000, 50, 1_000)
    assert survivor
