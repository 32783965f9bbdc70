"""Reconnect delays: exponential, capped, with jitter.

Jitter matters more than the curve: when a gateway drains (close code 1001) or dies,
every one of its clients reconnects at once; random spread keeps them from arriving as
one wave at the next gateway. The delay for attempt ``n`` (0-based) lies in
``[c * (1 - jitter), c]`` where ``c = min(maximum, initial * factor**n)``, so it never
exceeds ``maximum`` and never drops below ``initial * (1 - jitter)``.

A gateway that refuses a handshake for load (HTTP 503/429) may say how long to stay away
(``Retry-After``): :meth:`Backoff.after_refusal` keeps that as a floor and spreads the
clients *above* it, since clients that all wait exactly the asked time come back as one wave.
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

    def after_refusal(
        self, attempt: int, retry_after: float | None, rand: Callable[[], float] = random.random
    ) -> float:
        """Seconds to wait after a refusal for load: ``base`` to ``base * (1 + jitter)``.

        ``base`` is the larger of ``retry_after`` (never shortened, even past ``maximum``: the
        gateway knows its load) and the backoff's ceiling for ``attempt``, so repeated
        refusals without a header still grow.
        """
        base = max(retry_after or 0.0, self.ceiling(attempt))
        return base + base * self.jitter * rand()


# A pair the gateway refused to subscribe is asked again after 15-30 s, then less and less
# often, up to every 5-10 min: a pair it does not offer may come (or a failover may find one).
REFUSAL_BACKOFF = Backoff(initial=30.0, maximum=600.0, factor=2.0, jitter=0.5)
