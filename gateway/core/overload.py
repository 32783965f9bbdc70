"""Overload as a designed state: refuse new connections while the event loop is late. Pure.

One gateway process is one event loop. When it has more work than time (a connection
storm, more clients than its core can write to), every callback runs late, and before
this rule every client's latency grew without bound while more clients kept arriving.
The loop's lateness (``gateway.loop_lag``) is the honest measure of that: it includes
handshakes, subscribes, replica reloads and the fan-out's writes alike.

- The lag is smoothed over about ``smooth_s`` (an exponential moving average weighted by
  time), so one late callback (a garbage collection, start-up) is not overload, while a
  loop held for a second is.
- A late loop is this process's overload only if this process is busy: the share of a core
  it used (``cpu_s`` per second of the samples, smoothed the same way) is at least
  ``min_busy``. A loop that is late while the process uses little CPU is a starved machine
  (other processes, a CPU quota): refusing this gateway's clients would give no time back,
  and a gateway restarted on a busy host would refuse everyone for as long as the host
  stays busy.
- While the smoothed lag is at or above ``enter_s`` (and the process busy) the process is
  *overloaded*, and stays so until the lag has been at or below ``leave_s``, or the process
  below ``min_busy``, for ``hold_s`` (hysteresis: no flapping).
- Overloaded, a new WebSocket handshake is refused at once with 503 and ``Retry-After``
  (a whole number of seconds drawn from ``retry_after_s``, so refused clients do not come
  back as one wave). Connected clients keep their deltas: refusing is cheap, admitting is
  not, so the lag goes back down instead of spiralling.
- Every refusal and every entry into the state is counted (``refused_overloaded``,
  ``overload_entered``); the state and the lag are exported as gauges.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from gateway.core.limits import Refusal


class Overload:
    """The overload state of one process, fed with loop-lag samples and the time."""

    __slots__ = (
        "_cpu",
        "_last",
        "_quiet_since",
        "_rand",
        "busy",
        "enter_s",
        "entered",
        "hold_s",
        "lag_s",
        "leave_s",
        "min_busy",
        "overloaded",
        "retry_after_s",
        "smooth_s",
        "smoothed_s",
    )

    def __init__(
        self,
        enter_s: float = 0.15,
        leave_s: float = 0.05,
        hold_s: float = 2.0,
        retry_after_s: tuple[int, int] = (1, 5),
        smooth_s: float = 0.5,
        min_busy: float = 0.5,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 0 <= leave_s <= enter_s:
            raise ValueError(f"overload needs 0 <= leave_s <= enter_s, got {leave_s}, {enter_s}")
        if not 1 <= retry_after_s[0] <= retry_after_s[1]:
            raise ValueError(f"Retry-After range must be 1 <= low <= high, got {retry_after_s}")
        self.enter_s = enter_s
        self.leave_s = leave_s
        self.hold_s = hold_s
        self.retry_after_s = retry_after_s
        self._rand = rand
        self.overloaded = False
        self.smooth_s = smooth_s
        self.min_busy = min_busy
        self.busy = 0.0  # share of a core this process used, smoothed
        self._cpu: float | None = None  # the process's CPU seconds at the last sample
        self.lag_s = 0.0  # the last sample
        self.smoothed_s = 0.0  # what the rule judges
        self._last: float | None = None  # when the last sample was taken
        self.entered = 0  # times the state was entered
        self._quiet_since: float | None = None

    @property
    def enabled(self) -> bool:
        return self.enter_s > 0

    def observe(self, lag_s: float, now: float, cpu_s: float | None = None) -> None:
        """One loop-lag sample taken at ``now``, with the process's CPU seconds so far (None:
        unknown, taken as busy)."""
        self.lag_s = lag_s
        last, self._last = self._last, now
        elapsed = lag_s if last is None else max(now - last, lag_s)
        weight = 1.0 if self.smooth_s <= 0 else 1.0 - math.exp(-elapsed / self.smooth_s)
        self.smoothed_s += weight * (lag_s - self.smoothed_s)
        previous_cpu, self._cpu = self._cpu, cpu_s
        if cpu_s is None:
            self.busy = 1.0
        elif previous_cpu is not None and last is not None and now > last:
            self.busy += weight * ((cpu_s - previous_cpu) / (now - last) - self.busy)
        if not self.enabled:
            return
        lag_s = self.smoothed_s if self.busy >= self.min_busy else 0.0  # starved, not overloaded
        if lag_s >= self.enter_s:
            if not self.overloaded:
                self.overloaded = True
                self.entered += 1
            self._quiet_since = None
            return
        if not self.overloaded:
            return
        if lag_s > self.leave_s:
            self._quiet_since = None
        elif self._quiet_since is None:
            self._quiet_since = now
        elif now - self._quiet_since >= self.hold_s:
            self.overloaded = False
            self._quiet_since = None

    def refusal(self) -> Refusal | None:
        """The answer to a new handshake now: None admits it."""
        if not self.overloaded:
            return None
        low, high = self.retry_after_s
        retry = low + int(self._rand() * (high - low + 1))
        return Refusal(
            503, "overloaded", "this gateway is overloaded; retry later or use another gateway",
            "refused_overloaded", retry_after_s=float(min(retry, high)),
        )  # fmt: skip
