"""gateway.gc_policy: live connections' objects are frozen, closed ones' cycles freed by one
collection after churn.

The policy acts on the interpreter's collector, so each test unfreezes what it froze.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from gateway.core.counters import Counters
from gateway.gc_policy import GcPolicy
from tests.unit.gateway.gateway_fakes import turn


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


class Node:
    """An object in a reference cycle: only a full collection frees it."""

    def __init__(self) -> None:
        self.me = self


def test_start_freezes_what_start_up_made() -> None:
    GcPolicy(Counters()).start()
    assert gc.get_freeze_count() > 0


def test_every_freeze_every_new_connections_are_frozen() -> None:
    counters = Counters()
    policy = GcPolicy(counters, freeze_every=3, collect_after=100)
    for _ in range(7):
        policy.opened()
    assert counters["gc_freezes"] == 2  # at the 3rd and the 6th


async def test_zero_disables_the_policy() -> None:
    counters = Counters()
    policy = GcPolicy(counters, freeze_every=0, collect_after=1)
    policy.start()
    assert not policy.enabled and gc.get_freeze_count() == 0
    for _ in range(5):
        policy.opened()
    for _ in range(5):
        policy.closed()
    await turn()
    assert counters["gc_freezes"] == 0 and counters["gc_full_collections"] == 0
    assert gc.get_freeze_count() == 0


async def test_churn_frees_frozen_cycles_in_one_collection_and_freezes_again() -> None:
    counters = Counters()
    policy = GcPolicy(counters, freeze_every=1000, collect_after=2)
    node = Node()
    ref = weakref.ref(node)
    gc.freeze()  # as a closed connection's objects may be
    del node
    gc.collect()
    assert ref() is not None  # frozen: an ordinary collection does not look at it
    for _ in range(5):
        policy.closed()  # all in one turn: one maintenance, not one per close past the mark
    assert counters["gc_full_collections"] == 0  # on the next turn, not inside the close
    await turn()
    assert counters["gc_full_collections"] == 1 and ref() is None
    assert gc.get_freeze_count() > 0  # what survived is frozen again


async def test_the_closes_needed_grow_with_the_connections_still_open() -> None:
    counters = Counters()
    policy = GcPolicy(counters, freeze_every=1000, collect_after=1)
    for _ in range(10):
        policy.opened()
    policy.closed()  # 9 open: at least 4 closes needed
    policy.closed()
    await turn()
    assert counters["gc_full_collections"] == 0
    policy.closed()  # the 3rd close, 7 open: 3 >= 7 // 2
    await turn()
    assert counters["gc_full_collections"] == 1
    policy.closed()  # the count starts again after a collection
    await turn()
    assert counters["gc_full_collections"] == 1


async def test_gc_policy_freezes_live_connections_and_collects_after_churn() -> None:
    import gc

    from gateway.gc_policy import GcPolicy

    counters = Counters()
    policy = GcPolicy(counters, freeze_every=3, collect_after=4)
    try:
        for _ in range(6):
            policy.opened()
        assert counters["gc_freezes"] == 2 and gc.get_freeze_count() > 0
        cycle: list[object] = []
        cycle.append(cycle)  # garbage only a full collection frees …
        gc.freeze()  # … even frozen, as a closed connection's objects may be
        del cycle
        for _ in range(3):
            policy.closed()
        await asyncio.sleep(0)
        assert counters["gc_full_collections"] == 0  # not yet: 3 closed of the 4 needed
        policy.closed()
        await asyncio.sleep(0)
        assert counters["gc_full_collections"] == 1 and counters["gc_full_ms"] >= 0
        disabled = GcPolicy(counters, freeze_every=0)
        disabled.opened()
        assert counters["gc_freezes"] == 2
    finally:
        gc.unfreeze()
