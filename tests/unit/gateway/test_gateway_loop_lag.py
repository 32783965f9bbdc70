"""gateway.loop_lag: how much later than asked the event loop wakes a sleeper.

The loop's clock is the measure, so the held loop is played by a loop whose clock the test
moves forward (as time passes for a loop held by a long flush), not by holding a real one:
the lag it must report then follows from the clock, not from how busy the machine is.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from gateway.loop_lag import watch_loop_lag
from tests.unit.gateway.gateway_fakes import wait_until


class JumpingLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock the test can move forward."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped = 0.0

    def time(self) -> float:
        return super().time() + self.skipped


def test_a_loop_held_past_the_sleep_shows_as_lag_of_at_least_the_time_held() -> None:
    loop = JumpingLoop()
    samples: list[tuple[float, float, float]] = []

    async def run() -> None:
        watcher = asyncio.ensure_future(
            watch_loop_lag(lambda lag, now, cpu: samples.append((lag, now, cpu)), period_s=0.01)
        )
        try:
            await wait_until(lambda: len(samples) >= 1)
            count = len(samples)
            loop.skipped += 0.5  # the loop did not run for half a second
            await wait_until(lambda: len(samples) > count)
            lag, now, _cpu = samples[count]
            assert lag >= 0.5 - 0.01  # woken at least 0.5 s late, less the 10 ms it asked for
            assert now <= loop.time()
        finally:
            watcher.cancel()

    try:
        loop.run_until_complete(run())
    finally:
        loop.close()


async def test_every_wake_is_observed_with_the_loops_clock_and_the_cpu_time_so_far() -> None:
    loop = asyncio.get_running_loop()
    samples: list[tuple[float, float, float]] = []
    started, cpu_before = loop.time(), time.process_time()
    watcher = asyncio.ensure_future(
        watch_loop_lag(lambda lag, now, cpu: samples.append((lag, now, cpu)), period_s=0.001)
    )
    try:
        await wait_until(lambda: len(samples) >= 3)
    finally:
        watcher.cancel()
    assert all(lag >= 0.0 for lag, _, _ in samples)  # never early, never negative
    nows = [now for _, now, _ in samples]
    assert started < nows[0] and nows == sorted(nows) and nows[-1] <= loop.time()
    cpus = [cpu for _, _, cpu in samples]
    assert cpu_before <= cpus[0] and cpus == sorted(cpus)
    count = len(samples)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(watcher, 5.0)
    assert watcher.cancelled() and len(samples) == count  # cancelled: it ends, nothing more observed


async def test_the_monitor_measures_a_blocked_loop() -> None:
    samples: list[float] = []
    task = asyncio.create_task(watch_loop_lag(lambda lag, now, cpu: samples.append(lag), period_s=0.01))
    try:
        await asyncio.sleep(0.03)
        time.sleep(0.12)  # the loop is held, as a long flush would hold it
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        while not any(lag >= 0.1 for lag in samples):
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
