"""The garbage collector policy (gateway.gc_policy); the pure rules once here are in tests/unit/gateway/core.

gc_policy is not part of gateway.core (it drives the interpreter's collector), so its test
stays here; each gateway.core module's tests are in ``core/test_gateway_<module>.py``.
"""

from __future__ import annotations

import asyncio

from gateway.core.counters import Counters


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
