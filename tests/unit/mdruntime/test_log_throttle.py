"""mdruntime.log_throttle: one line per kind per interval, and the count of those left out."""

from __future__ import annotations

import logging

from mdruntime.log_throttle import LogThrottle


def test_lines_of_a_kind_are_throttled_and_counted(caplog) -> None:
    now = [0.0]
    throttle = LogThrottle(logging.getLogger("t"), every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t"):
        throttle.warning("gap", "gap on %s", "p0")
        throttle.warning("gap", "gap on %s", "p1")  # within 10 s: counted only
        throttle.warning("late", "late on %s", "p1")  # another kind goes out
        now[0] = 10.0
        throttle.error("gap", "gap on %s", "p2")
    assert [r.getMessage() for r in caplog.records] == [
        "gap on p0",
        "late on p1",
        "gap on p2 (1 more of this kind since the last such line, not logged)",
    ]
    assert caplog.records[-1].levelno == logging.ERROR
