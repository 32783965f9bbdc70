"""Pacing and pair choice: pure arithmetic the run loop asks "how many now, for which pair".

A schedule says how many events are due ``t`` seconds after the start: the integral of its
rate, so event ``i`` (0-based) is due when that integral reaches ``i``. Scheduling against
the start time, never "sleep 1/rate after each send", means a late wake-up is made up by a
bigger batch instead of drifting, and the long-run rate is exactly the requested one (as
long as the process can keep up). :class:`SteadySchedule` has a constant rate;
:class:`BurstySchedule` alternates quiet periods and bursts with the same long-run mean.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from typing import Protocol


def events_due(rate: float, elapsed: float, sent: int) -> int:
    """How many events must be sent now so that ``sent`` catches up with a steady schedule."""
    if elapsed < 0:
        return 0
    return max(0, math.floor(rate * elapsed) + 1 - sent)


def next_due(rate: float, sent: int) -> float:
    """Seconds after the start at which event number ``sent`` (0-based) is due, at a steady rate."""
    return sent / rate


class Schedule(Protocol):
    """When events are due, relative to the start of the run."""

    rate: float  # the long-run mean, events per second

    def due(self, elapsed: float) -> int:
        """Events due by ``elapsed`` seconds (cumulative; event 0 is due at 0).

        ``elapsed`` must not decrease between calls.
        """
        ...

    def time_of(self, index: int) -> float:
        """Seconds after the start at which event ``index`` (0-based) is due."""
        ...


class SteadySchedule:
    """A constant rate: event ``i`` at ``i / rate``."""

    __slots__ = ("rate",)

    def __init__(self, rate: float) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive")
        self.rate = rate

    def due(self, elapsed: float) -> int:
        return 0 if elapsed < 0 else math.floor(self.rate * elapsed) + 1

    def time_of(self, index: int) -> float:
        return index / self.rate


class BurstySchedule:
    """Quiet periods and bursts: the rate switches between ``quiet`` and ``burst`` times a base.

    Period lengths are exponential (means ``quiet_s`` and ``burst_s``), drawn from ``rng``, so a
    seed fixes the whole timeline. The base is chosen so that the long-run mean is ``rate``
    (with the defaults: a quarter of it for ~2 s, then four times it for ~0.5 s).
    """

    def __init__(
        self,
        rate: float,
        rng: random.Random,
        quiet: float = 0.25,
        burst: float = 4.0,
        quiet_s: float = 2.0,
        burst_s: float = 0.5,
    ) -> None:
        if not (rate > 0 and 0 < quiet <= burst and quiet_s > 0 and burst_s > 0):
            raise ValueError("need rate > 0, 0 < quiet <= burst and positive period lengths")
        self.rate = rate
        mean_factor = (quiet * quiet_s + burst * burst_s) / (quiet_s + burst_s)
        self._rates = (rate * quiet / mean_factor, rate * burst / mean_factor)
        self._means = (quiet_s, burst_s)
        self._rng = rng
        self._bursting = rng.random() < burst_s / (quiet_s + burst_s)
        # Segments (start time, events due at the start, rate); segment i ends where i+1 starts.
        self._starts: list[float] = [0.0]
        self._counts: list[float] = [0.0]
        self._seg_rates: list[float] = [self._rates[self._bursting]]
        self._extend()

    def _extend(self) -> None:
        """Append the next period (its start is where the last one ends)."""
        length = self._rng.expovariate(1.0 / self._means[self._bursting])
        start, count, rate = self._starts[-1], self._counts[-1], self._seg_rates[-1]
        self._bursting = not self._bursting
        self._starts.append(start + length)
        self._counts.append(count + rate * length)
        self._seg_rates.append(self._rates[self._bursting])

    def _forget_before(self, segment: int) -> None:
        """Drop segments that end before the current one, so memory stays bounded."""
        if segment > 1000:
            del self._starts[:segment], self._counts[:segment], self._seg_rates[:segment]

    def bursting_at(self, elapsed: float) -> bool:
        """True if ``elapsed`` falls in a burst (for progress lines and tests)."""
        while self._starts[-1] <= elapsed:
            self._extend()
        i = bisect.bisect_right(self._starts, elapsed) - 1
        return self._seg_rates[i] == self._rates[1]

    def due(self, elapsed: float) -> int:
        if elapsed < 0:
            return 0
        while self._starts[-1] <= elapsed:
            self._extend()
        i = bisect.bisect_right(self._starts, elapsed) - 1
        count = self._counts[i] + self._seg_rates[i] * (elapsed - self._starts[i])
        self._forget_before(i)
        return math.floor(count) + 1

    def time_of(self, index: int) -> float:
        while self._counts[-1] <= index:
            self._extend()
        i = bisect.bisect_right(self._counts, index) - 1
        if i < 0:  # in a period already forgotten: long overdue
            return self._starts[0]
        return self._starts[i] + (index - self._counts[i]) / self._seg_rates[i]


class PairPicker(Protocol):
    """Chooses which pair (an index into the run's pair list) the next event belongs to."""

    def next_index(self) -> int: ...


class RoundRobin:
    """Every pair in turn: with ``n`` pairs, each gets exactly 1/n of the events."""

    __slots__ = ("_count", "_next")

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError("need at least one pair")
        self._count = count
        self._next = 0

    def next_index(self) -> int:
        index = self._next
        self._next = index + 1 if index + 1 < self._count else 0
        return index


class WeightedPicker:
    """Pair ``i`` with probability ``weights[i] / sum(weights)``, drawn from a seeded ``rng``."""

    __slots__ = ("_cumulative", "_rng", "_total")

    def __init__(self, weights: Sequence[float], rng: random.Random) -> None:
        if not weights or any(w < 0 for w in weights) or not sum(weights) > 0:
            raise ValueError("need at least one pair and non-negative weights with a positive sum")
        self._cumulative = list(itertools.accumulate(weights))
        self._total = self._cumulative[-1]
        self._rng = rng

    def next_index(self) -> int:
        x = self._rng.random() * self._total
        return min(bisect.bisect_right(self._cumulative, x), len(self._cumulative) - 1)
