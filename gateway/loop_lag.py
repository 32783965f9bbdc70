"""How late this process's event loop runs: the input of the overload rule (``gateway.overload``).

A task sleeps ``period_s`` again and again and measures how much later than asked it woke
up. Any work that holds the loop (handshakes, subscribes, a fan-out flush to thousands of
clients, replica reloads) shows as lag, which is why it is the measure of overload rather
than a count of any one kind of work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

PERIOD_S = 0.05


async def watch_loop_lag(observe: Callable[[float, float], None], period_s: float = PERIOD_S) -> None:
    """Call ``observe(lag_s, now)`` after every sleep, for the life of the task."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time() + period_s
        await asyncio.sleep(period_s)
        now = loop.time()
        observe(max(0.0, now - asked), now)
