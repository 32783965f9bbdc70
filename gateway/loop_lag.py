"""How late this process's event loop runs: the input of the overload rule (``gateway.core.overload``).

A task sleeps ``period_s`` again and again and measures how much later than asked it woke
up. Any work that holds the loop (handshakes, subscribes, a fan-out flush to thousands of
clients, replica reloads) shows as lag, which is why it is the measure of overload rather
than a count of any one kind of work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

PERIOD_S = 0.05


async def watch_loop_lag(observe: Callable[[float, float, float], None], period_s: float = PERIOD_S) -> None:
    """Call ``observe(lag_s, now, cpu_s)`` after every sleep, for the life of the task.

    ``cpu_s`` is the process's CPU time so far: with the lag it tells a busy process from a
    starved one (``gateway.core.overload``)."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time() + period_s
        await asyncio.sleep(period_s)
        now = loop.time()
        observe(max(0.0, now - asked), now, time.process_time())
