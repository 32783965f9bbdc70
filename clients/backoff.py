"""Reconnect delays: exponential, capped, with jitter.

Jitter matters more than the curve: when a gateway drains (close code 1001) or dies,
every one of its clients reconnects at once; random spread keeps them from arriving as
one wave at the next gateway. The delay for attempt ``n`` (0-based) lies in
``[c * (1 - jitter), c]`` where ``c = min(maximum, initial * factor**n)``, so it never
exceeds ``maximum`` and never drops below ``initial * (1 - jitter)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Parameters of the reconnect delay; immutable, checked on creation."""

    initial: float = 0.25  # seconds before the first retry (before jitter)
    maximum: float = 10.0  # no delay is ever longer than this
    factor: float = 2.0  # growth per failed attempt
    jitter: float = 0.5  # fraction of the delay that is random: 0 = none, 1 = "full jitter"

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {self.initial}, {self.maximum}")
        if self.factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff jitter must be in [0, 1], got {self.jitter}")

    def ceiling(self, attempt: int) -> float:
        """The delay of ``attempt`` before jitter: ``initial * factor**attempt``, capped."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        try:
            grown = self.initial * self.factor**attempt
        except OverflowError:
            return self.maximum
        return min(self.maximum, grown)

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before ``attempt``; ``rand`` returns a float in [0, 1) (injectable for tests)."""
        ceiling = self.ceiling(attempt)
        return ceiling - ceiling * self.jitter * rand()
