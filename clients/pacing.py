"""The client's own op budget: a token bucket kept under the gateway's per-connection limit.

A gateway counts every op a connection sends (``subscribe``, ``unsubscribe``, ``resync``,
``ping``) against a token bucket (20/s, bursts of 40 by default; docs/protocol.md 4.3) and
closes the connection with 1008 when it runs dry. Many pairs losing sync at once (a
gateway replica reloading, a long pause) would otherwise send one resync each in a single
burst, get the connection closed, resubscribe and loop. Every op the client sends waits
for a token here first. Time is passed in, so the rules are tested without a clock.
"""

from __future__ import annotations


class OpPacer:
    """``rate`` ops a second with at most ``burst`` saved up; starts full, like the gateway's."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if not rate > 0 or burst < 1:  # "not > 0" refuses NaN too
            raise ValueError(f"op pacing needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def wait(self, now: float) -> float:
        """Seconds until an op may go (0.0: now)."""
        self._refill(now)
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate

    def take(self, now: float) -> bool:
        """Spend a token if there is one; False means wait :meth:`wait` seconds first."""
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
