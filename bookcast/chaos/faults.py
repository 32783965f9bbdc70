"""Injecting each kind of fault into the running stack, and lifting it again.

One coroutine per kind; each returns the fault's :class:`Injected` record: when it began,
when it was lifted (time to heal counts from there), and what it showed on the way (which
md_service took over and how fast, whether the zombie was fenced, what the garbage got
back). Blocking process work (SIGKILL and wait, a start that waits for /health) runs in
a thread so the verifying clients keep reading meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bookcast.chaos import garbage, stall
from bookcast.chaos.schedule import Fault, FaultKind
from bookcast.chaos.stack import ChaosStack
from bookcast.chaos.tiers import Tier

FAILOVER_TIMEOUT_S = 30.0
FENCE_TIMEOUT_S = 20.0
STALL_MARGIN_S = 30.0  # a stalled client must be dropped within slow_close_s plus this


@dataclass
class Injected:
    """What happened when one fault was injected."""

    fault: Fault
    target: str
    started: float
    lifted: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # rules the fault's own checks saw broken


async def _wait(predicate: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    """Poll a (blocking) condition in a thread until true or ``timeout``; whether it came true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate):
            return True
        await asyncio.sleep(every)
    return False


async def _kill_and_restart(stack: ChaosStack, tier: Tier, fault: Fault) -> Injected:
    record = Injected(fault, tier.instance, time.monotonic())
    await asyncio.to_thread(stack.poll_tier, tier)
    await asyncio.to_thread(tier.kill)
    await asyncio.sleep(fault.hold_s)
    await asyncio.to_thread(tier.restart)
    record.lifted = time.monotonic()
    record.notes["down_s"] = round(record.lifted - record.started, 2)
    return record


async def feed_kill(stack: ChaosStack, fault: Fault, rng: random.Random) -> Injected:
    assert stack.feed is not None
    return await _kill_and_restart(stack, stack.feed, fault)


async def md_kill(stack: ChaosStack, fault: Fault, rng: random.Random) -> Injected:
    return await _kill_and_restart(stack, stack.tier(fault.target), fault)


async def gateway_kill(stack: ChaosStack, fault: Fault, rng: random.Random) -> Injected:
    return await _kill_and_restart(stack, stack.tier(fault.target), fault)


async def broker_freeze(stack: ChaosStack, fault: Fault, rng: random.Random) -> Injected:
    record = Injected(fault, "kafka", time.monotonic())
    os.kill(stack.kafka.pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(fault.hold_s)
    finally:
        os.kill(stack.kafka.pid, signal.SIGCONT)
    record.lifted = time.monotonic()
    return record


async def redis_restart(stack: ChaosStack, fault: Fault, rng: random.Random) -> Injected:
    record = Injected(fault, "redis", time.monotonic())
    await asyncio.to_thread(stack.poll)
    os.kill(stack.redis.pid, signal.SIGKILL)
    await asyncio.sleep(fault.hold_s)
    await asyncio.to_thread(stack.restart_redis_empty)
    record.lifted = time.monotonic()
    return record


async def md_freeze(stack: ChaosStack, fault: Fault, rng: random.Random) -> Injected:
    """Freeze an md_service that owns partitions until another owns them all, then wake it:
    it must find itself fenced (or told by the group) and publish nothing of what it lost."""
    zombie = stack.tier(fault.target)
    owned = await asyncio.to_thread(stack.owned, zombie)
    if not owned:  # it owns nothing right now: freeze one that does
        for other in stack.mds:
            if other is not zombie and await asyncio.to_thread(stack.owned, other):
                zombie = other
                break
    others = [md for md in stack.mds if md is not zombie]
    await asyncio.to_thread(stack.poll_tier, zombie)
    before = {k: stack.counter(zombie, k) for k in ("partitions_lost", "partitions_released")}
    record = Injected(fault, zombie.instance, time.monotonic())
    record.notes["owned_when_frozen"] = await asyncio.to_thread(stack.owned, zombie)
    zombie.freeze()
    try:
        everything = set(range(stack.settings.partitions))

        def taken_over() -> bool:
            return set().union(*(stack.owned(md) for md in others)) >= everything

        took = await _wait(taken_over, FAILOVER_TIMEOUT_S, every=0.05)
        record.notes["failover_s"] = round(time.monotonic() - record.started, 2) if took else None
        if not took:
            record.problems.append(
                f"no takeover of {zombie.instance}'s partitions in {FAILOVER_TIMEOUT_S:.0f} s"
            )
        await asyncio.sleep(fault.hold_s)
    finally:
        zombie.thaw()
    record.lifted = time.monotonic()

    def found_out() -> bool:
        stack.poll_tier(zombie)
        return any(stack.counter(zombie, k) > v for k, v in before.items())

    if await _wait(found_out, FENCE_TIMEOUT_S, every=0.2):
        lost = stack.counter(zombie, "partitions_lost") - before["partitions_lost"]
        record.notes["woke_to"] = "fenced by Redis" if lost else "revoked by the group"
        record.notes["partitions_fenced"] = lost
    else:
        record.notes["woke_to"] = "nothing noticed"
        record.problems.append(f"{zombie.instance} woke and neither was fenced nor lost its partitions")
    return record


async def client_stall(stack: ChaosStack, fault: Fault, rng: random.Random) -> Injected:
    gateway = stack.tier(fault.target)
    assert gateway.port is not None
    await asyncio.to_thread(stack.poll_tier, gateway)
    closed_before = stack.counter(gateway, "closed_slow")
    record = Injected(fault, gateway.instance, time.monotonic())
    count, pairs = stack.settings.stallers, stack.settings.pairs
    stallers = [await stall.open_staller(gateway.port, pairs) for _ in range(count)]
    # the kernel's buffers fill first (megabytes), then the gateway's mark, then slow_close_s
    limit = float(stack.settings.tier_settings.get("gateway_slow_close_s", "10")) + STALL_MARGIN_S
    try:
        await stall.stall(stallers, pairs, limit)
    finally:
        for s in stallers:
            s.close()
    record.lifted = time.monotonic()
    await asyncio.to_thread(stack.poll_tier, gateway)
    dropped = [s.dropped - s.opened for s in stallers if s.dropped is not None]
    record.notes.update(
        stallers=count,
        snapshot_requests=sum(s.asked for s in stallers),
        dropped_by_gateway=len(dropped),
        dropped_after_s=round(max(dropped), 1) if dropped else None,
        closed_slow=stack.counter(gateway, "closed_slow") - closed_before,
    )
    if len(dropped) < count:
        record.problems.append(f"{count - len(dropped)} stalled clients still open after {limit:.0f} s")
    return record


async def garbage_burst(stack: ChaosStack, fault: Fault, rng: random.Random) -> Injected:
    gateway = stack.tier(fault.target)
    assert gateway.port is not None
    record = Injected(fault, gateway.instance, time.monotonic())
    outcomes = await garbage.burst(gateway.port, stack.settings.garbage, rng)
    record.lifted = time.monotonic()
    answers: Counter[str] = Counter()
    for o in outcomes:
        if o.close_code is not None:
            answers[f"close {o.close_code}"] += 1
        elif o.status is not None and o.status != 101:
            answers[f"http {o.status}"] += 1
        elif o.pong:
            answers["error, then pong"] += 1
        else:
            answers["no answer"] += 1
        if o.bad:
            record.problems.append(f"garbage {o.case}: {o.bad}")
    record.notes.update(connections=len(outcomes), answers=dict(sorted(answers.items())))
    return record


INJECTORS: dict[FaultKind, Callable[[ChaosStack, Fault, random.Random], Awaitable[Injected]]] = {
    FaultKind.FEED_KILL: feed_kill,
    FaultKind.MD_KILL: md_kill,
    FaultKind.GATEWAY_KILL: gateway_kill,
    FaultKind.BROKER_FREEZE: broker_freeze,
    FaultKind.REDIS_RESTART: redis_restart,
    FaultKind.MD_FREEZE: md_freeze,
    FaultKind.CLIENT_STALL: client_stall,
    FaultKind.GARBAGE: garbage_burst,
}
