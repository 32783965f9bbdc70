"""The fault schedule: which faults, in which order, against which process, for how long.

Pure and seeded: one seed is one schedule, printed as it runs, so a failing run can be
repeated. The first round injects every kind once, the feed's kill first: a restarted
feed starts again at xseq 1 (feed_simulator/source.py, a known limitation) and md_service
skips what it already applied, so the pipeline stays dark for as long as the feed had
run; early, that is seconds. Later rounds (the default run) repeat the other kinds in a
new order each, as long as their estimated cost fits the duration.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    FEED_KILL = "feed_kill"  # SIGKILL the feed, restart it (same seed)
    MD_KILL = "md_kill"  # SIGKILL one md_service, restart it
    GATEWAY_KILL = "gateway_kill"  # SIGKILL one gateway, restart it on the same port
    BROKER_FREEZE = "broker_freeze"  # SIGSTOP the Kafka broker, then SIGCONT
    REDIS_RESTART = "redis_restart"  # SIGKILL Redis, restart it empty on the same port
    CLIENT_STALL = "client_stall"  # raw connections that subscribe to every pair and never read
    MD_FREEZE = "md_freeze"  # SIGSTOP one md_service until the other took over, then SIGCONT: fenced
    GARBAGE = "garbage"  # bad handshakes, garbage frames, deep JSON, ping floods, bad HTTP


# Seconds a fault of each kind costs, roughly (hold, heal, settle): only to size the plan.
ESTIMATED_COST_S: dict[FaultKind, float] = {
    FaultKind.FEED_KILL: 9.0,
    FaultKind.MD_KILL: 8.0,
    FaultKind.GATEWAY_KILL: 5.0,
    FaultKind.BROKER_FREEZE: 8.0,
    FaultKind.REDIS_RESTART: 6.0,
    FaultKind.CLIENT_STALL: 7.0,
    FaultKind.MD_FREEZE: 10.0,
    FaultKind.GARBAGE: 3.0,
}
REPEATED = tuple(kind for kind in FaultKind if kind is not FaultKind.FEED_KILL)


@dataclass(frozen=True, slots=True)
class Fault:
    """One planned fault. ``hold_s``: how long it lasts before it is lifted (a killed process
    stays down, a frozen one frozen; for md_freeze, extra time after the takeover);
    ``gap_s``: quiet time after it healed, before the next one."""

    index: int
    kind: FaultKind
    target: str
    hold_s: float
    gap_s: float

    def describe(self) -> str:
        hold = f", held {self.hold_s:.1f} s" if self.hold_s else ""
        return f"#{self.index} {self.kind} {self.target}{hold}"


def _target(kind: FaultKind, rng: random.Random, mds: int, gateways: int) -> str:
    if kind is FaultKind.FEED_KILL:
        return "feed"
    if kind in (FaultKind.MD_KILL, FaultKind.MD_FREEZE):
        return f"md-{rng.randint(1, mds)}"
    if kind is FaultKind.BROKER_FREEZE:
        return "kafka"
    if kind is FaultKind.REDIS_RESTART:
        return "redis"
    return f"gateway-{rng.randint(1, gateways)}"


def _hold(kind: FaultKind, rng: random.Random, quick: bool) -> float:
    if kind is FaultKind.BROKER_FREEZE:
        return 3.0 if quick else round(rng.uniform(2.0, 8.0), 1)
    if kind is FaultKind.MD_FREEZE:
        return 0.5 if quick else round(rng.uniform(0.5, 3.0), 1)
    if kind in (FaultKind.MD_KILL, FaultKind.GATEWAY_KILL, FaultKind.REDIS_RESTART):
        return 0.5 if quick else round(rng.uniform(0.2, 2.0), 1)
    return 0.0  # the feed comes back at once; stalls and bursts last as long as they take


def plan(
    seed: int, duration_s: float, *, mds: int = 2, gateways: int = 2, quick: bool = False
) -> list[Fault]:
    """Every kind once (the feed's kill first), then more rounds while they fit ``duration_s``."""
    rng = random.Random(f"bookcast-chaos:{seed}")
    faults: list[Fault] = []
    spent = 0.0
    round_no = 0
    while True:
        kinds = list(REPEATED)
        rng.shuffle(kinds)
        if round_no == 0:
            kinds.insert(0, FaultKind.FEED_KILL)
        for kind in kinds:
            gap = 1.0 if quick else round(rng.uniform(1.0, 4.0), 1)
            cost = ESTIMATED_COST_S[kind] + gap
            if round_no > 0 and spent + cost > duration_s:
                return faults
            fault = Fault(
                len(faults) + 1, kind, _target(kind, rng, mds, gateways), _hold(kind, rng, quick), gap
            )
            faults.append(fault)
            spent += cost + fault.hold_s
        round_no += 1
        if quick:
            return faults
