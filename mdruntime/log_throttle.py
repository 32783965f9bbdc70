"""One log line per kind per interval: a stream of bad events must not flood the log.

Every line an event (or a Kafka message) can trigger goes through a :class:`LogThrottle`
(md_service's intake, write marks and dead letters use one): the first line of a kind is
logged at once, later ones of that kind within ``every`` seconds are only counted, and the
next line let through says how many were left out. The caller's counters still see every
event. It lives here, not in a tier, because any process with a hot path needs it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

LOG_EVERY_S = 10.0


class LogThrottle:
    """Rate-limits one logger's lines per kind; cheap enough to call for every bad event."""

    __slots__ = ("_clock", "_kinds", "every", "logger")

    def __init__(
        self, logger: logging.Logger, every: float = LOG_EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.logger = logger
        self.every = every
        self._clock = clock
        self._kinds: dict[str, list[float]] = {}  # kind -> [when the next line may go, lines left out]

    def allow(self, kind: str) -> int | None:
        """None: leave this line out (it is counted). Else log it now: the number left out before it."""
        now = self._clock()
        entry = self._kinds.get(kind)
        if entry is None:
            self._kinds[kind] = [now + self.every, 0]
            return 0
        if now < entry[0]:
            entry[1] += 1
            return None
        left_out = int(entry[1])
        entry[0], entry[1] = now + self.every, 0
        return left_out

    def log(self, level: int, kind: str, msg: str, *args: object) -> None:
        """``logger.log(level, msg, *args)`` unless a line of ``kind`` went out within ``every`` s."""
        left_out = self.allow(kind)
        if left_out is None:
            return
        if left_out:
            msg += f" ({left_out} more of this kind since the last such line, not logged)"
        self.logger.log(level, msg, *args)

    def warning(self, kind: str, msg: str, *args: object) -> None:
        self.log(logging.WARNING, kind, msg, *args)

    def error(self, kind: str, msg: str, *args: object) -> None:
        self.log(logging.ERROR, kind, msg, *args)
