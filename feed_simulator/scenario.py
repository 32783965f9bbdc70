"""Traffic scenarios: how events are spread over time and over pairs (``--scenario``).

A scenario is two choices: the arrival process (steady, or quiet periods and bursts) and
the pair shares (equal; one "hot" pair carrying half of everything — the market-data
version of the celebrity problem: one book that every client wants, updating fastest; or
Zipf-like popularity, where a few hot pairs carry most events and a long tail trades
rarely, as on a real exchange). Everything is derived from the run's seed, so a scenario
with a seed is one exact stream.

``zipf`` takes its exponent in the name (``zipf:1.2``; plain ``zipf`` is
:data:`ZIPF_EXPONENT`), so the one string every process of a run already carries
(``FeedConfig.scenario``) is the whole scenario.

With ``--processes N`` each process runs some of the pairs (:func:`split_pairs`) at its
share of the rate; the arrival schedule comes from the seed alone, so the bursts of all
processes line up as they would on one exchange.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence
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
ZIPF_EXPONENT = 1.0  # the k-th pair carries 1/k of the first one's events (200 pairs: top 10 carry 50 %)
ZIPF_MAX_EXPONENT = 5.0


def zipf_weights(count: int, exponent: float = ZIPF_EXPONENT) -> list[float]:
    """Shares of ``count`` pairs ranked by popularity: ``1 / rank**exponent``, normalised to sum 1.

    Rank 1 is the first pair. The load generator draws subscriptions with the same
    function (``bookcast load --zipf``), so clients want the pairs that trade most.
    """
    if count < 1:
        raise ValueError("need at least one pair")
    raw = [1.0 / rank**exponent for rank in range(1, count + 1)]
    total = sum(raw)
    return [w / total for w in raw]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    about: str
    bursty: bool = False
    hot: bool = False
    zipf: float | None = None  # set: Zipf-like shares with this exponent (the first pair is rank 1)

    def weights(self, pairs: Sequence[str]) -> list[float]:
        """Each pair's share of the events (they sum to 1); the hot pair is the first one."""
        n = len(pairs)
        if self.zipf is not None:
            return zipf_weights(n, self.zipf)
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


def zipf_name(exponent: float) -> str:
    """The scenario name of Zipf popularity with ``exponent`` (``zipf`` for the default)."""
    return "zipf" if exponent == ZIPF_EXPONENT else f"zipf:{exponent:g}"


def _zipf(exponent: float) -> Scenario:
    return Scenario(
        zipf_name(exponent),
        f"a constant rate; the k-th pair carries 1/k^{exponent:g} of the first's",
        zipf=exponent,
    )


class ScenarioTable(Mapping[str, Scenario]):
    """The named scenarios, plus ``zipf:<exponent>`` made on lookup (iteration lists the names)."""

    def __init__(self, named: Sequence[Scenario]) -> None:
        self._named = {s.name: s for s in named}

    def __getitem__(self, name: str) -> Scenario:
        found = self._named.get(name)
        if found is not None:
            return found
        kind, _, raw = name.partition(":")
        if kind != "zipf" or not raw:
            raise KeyError(name)
        try:
            exponent = float(raw)
        except ValueError:
            raise KeyError(name) from None
        if not (0 < exponent <= ZIPF_MAX_EXPONENT and math.isfinite(exponent)):
            raise KeyError(name)
        return _zipf(exponent)

    def __iter__(self) -> Iterator[str]:
        return iter(self._named)

    def __len__(self) -> int:
        return len(self._named)


SCENARIOS = ScenarioTable(
    (
        Scenario("steady", "a constant rate, every pair an equal share"),
        Scenario("bursty", "quiet periods (1/4 of the rate) and bursts (4x), same mean", bursty=True),
        Scenario("hot-pair", "a constant rate; the first pair carries half of all events", hot=True),
        Scenario("mixed", "bursts and a hot pair together", bursty=True, hot=True),
        _zipf(ZIPF_EXPONENT),
    )
)


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
