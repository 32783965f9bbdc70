"""Pacing and pair choice: pure arithmetic the run loop asks "how many now, for which pair".

Event ``i`` (0-based) is due ``i / rate`` seconds after the start. Scheduling against the
start time, never "sleep 1/rate after each send", means a late wake-up is made up by a
bigger batch instead of drifting, and the long-run rate is exactly the requested one
(as long as the process can keep up).
"""

from __future__ import annotations

import math
from typing import Protocol


def events_due(rate: float, elapsed: float, sent: int) -> int:
    """How many events must be sent now so that ``sent`` catches up with the schedule."""
    if elapsed < 0:
        return 0
    return max(0, math.floor(rate * elapsed) + 1 - sent)


def next_due(rate: float, sent: int) -> float:
    """Seconds after the start at which event number ``sent`` (0-based) is due."""
    return sent / rate


class PairPicker(Protocol):
    """Chooses which pair (an index into the run's pair list) the next event belongs to.

    The hook for traffic shapes: round robin spreads evenly; a later "hot pair" scenario
    is another picker that returns one index for half of all events.
    """

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
