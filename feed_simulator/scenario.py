"""Traffic scenarios: how events are spread over time and over pairs (``--scenario``).

A scenario is two choices: the arrival process (steady, or quiet periods and bursts) and
the pair shares (equal, or one "hot" pair carrying half of everything — the market-data
version of the celebrity problem: one book that every client wants, updating fastest).
Everything is derived from the run's seed, so a scenario with a seed is one exact stream.

With ``--processes N`` each process runs some of the pairs (:func:`split_pairs`) at its
share of the rate; the arrival schedule comes from the seed alone, so the bursts of all
processes line up as they would on one exchange.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from feed_simulator.pacing import (
    BurstySchedule,
    PairPicker,
    RoundRobin,
    Schedule,
    SteadySchedule,
    WeightedPicker,
)

HOT_SHARE = 0.5  # share of all events that go to the hot pair (the first pair of the run)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    about: str
    bursty: bool = False
    hot: bool = False

    def weights(self, pairs: Sequence[str]) -> list[float]:
        """Each pair's share of the events (they sum to 1); the hot pair is the first one."""
        n = len(pairs)
        if not self.hot or n == 1:
            return [1.0 / n] * n
        return [HOT_SHARE] + [(1.0 - HOT_SHARE) / (n - 1)] * (n - 1)

    def schedule(self, rate: float, seed: int) -> Schedule:
        """When events are due; the same for every process of a run with this seed."""
        if self.bursty:
            return BurstySchedule(rate, random.Random(f"bookcast-arrivals:{seed}"))
        return SteadySchedule(rate)

    def picker(self, weights: Sequence[float], seed: int, part: int = 0) -> PairPicker:
        """Which pair each event goes to: round robin if the shares are equal, else weighted draws."""
        if len(set(weights)) == 1:
            return RoundRobin(len(weights))
        return WeightedPicker(weights, random.Random(f"bookcast-pairs:{seed}:{part}"))


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("steady", "a constant rate, every pair an equal share"),
        Scenario("bursty", "quiet periods (1/4 of the rate) and bursts (4x), same mean", bursty=True),
        Scenario("hot-pair", "a constant rate; the first pair carries half of all events", hot=True),
        Scenario("mixed", "bursts and a hot pair together", bursty=True, hot=True),
    )
}


def split_pairs(pairs: Sequence[str], weights: Sequence[float], processes: int) -> list[list[int]]:
    """Indices of ``pairs`` per process, balancing the weights (heaviest first, to the lightest).

    Each pair stays in exactly one process, so its xseq stays in order. Never returns an
    empty part: at most ``len(pairs)`` parts.
    """
    parts = min(processes, len(pairs))
    if parts < 1:
        raise ValueError("need at least one process and one pair")
    loads = [0.0] * parts
    out: list[list[int]] = [[] for _ in range(parts)]
    for index in sorted(range(len(pairs)), key=lambda i: (-weights[i], i)):
        lightest = min(range(parts), key=lambda p: (loads[p], p))
        out[lightest].append(index)
        loads[lightest] += weights[index]
    return [sorted(part) for part in out]
