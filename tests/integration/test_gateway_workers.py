"""Multi-core and shutdown: N workers on one port, each its own Redis subscriber; SIGTERM means 1001.

``bookcast gateway --workers 2`` must serve clients from two processes on one port, each
with its own Pub/Sub subscription, and on SIGTERM close every client with 1001 and exit
within the bound, even with a client that has stopped reading.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis

from bookcast.bench.fanout_publisher import SyntheticPublisher
from bookcast.processes import TierProcess
from mdcore.redis_layout import RedisLayout
from tests.integration.gateway_helpers import PAIRS, Probe, gateway_env, stalled_probe
from tests.integration.stack_helpers import unique, wait_until, wait_until_async

pytestmark = pytest.mark.integration

T = 20.0


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


async def test_two_workers_share_the_port_and_stop_together_with_1001(infra) -> None:
    prefix = unique("gwwork")
    publisher = SyntheticPublisher(infra.redis_url, prefix, PAIRS, seed=2)
    publisher.window()
    env = gateway_env(infra.redis_url, prefix, shutdown_s="3")
    gateway = TierProcess("gateway", "gateway", args=["--workers", "2"], env=env, listens=True).start()
    client = redis.Redis.from_url(infra.redis_url)
    channel = RedisLayout(prefix).delta_channel("BTC-USD")
    try:
        await wait_until_async(lambda: len(children(gateway.pid)) == 2, T, "two workers")
        workers = children(gateway.pid)
        numsub = lambda: dict(client.pubsub_shardnumsub(channel))[channel.encode()]  # noqa: E731
        probes: list[Probe] = []
        deadline = time.monotonic() + T
        while numsub() < 2:  # the kernel spreads new connections over both listening workers
            assert time.monotonic() < deadline, "every connection went to one worker"
            probe = await Probe.open(gateway.ws_url)
            await probe.send(op="subscribe", pairs=["BTC-USD"], id=1)
            await probe.wait_seq("BTC-USD", publisher.pairs["BTC-USD"].seq)
            probes.append(probe)
        publisher.window()
        for probe in probes:
            await probe.wait_seq("BTC-USD", publisher.pairs["BTC-USD"].seq)
        stuck = await stalled_probe(gateway.ws_url)
        stuck.ws.transport.pause_reading()

        started = time.monotonic()
        gateway.stop(timeout=T)  # SIGTERM to the supervisor
        took = time.monotonic() - started
        assert gateway.returncode == 0
        assert took < 3 + 2 + 2, f"shutdown took {took:.1f}s"
        assert not any(alive(pid) for pid in workers)
        for probe in probes:
            await wait_until_async(lambda p=probe: p._task.done(), T, "the close")
            assert probe.ws.close_code == 1001
            await probe.close()
        stuck.ws.transport.abort()
    finally:
        gateway.stop()
        client.close()
        publisher.close()


def test_a_killed_supervisor_takes_its_workers_along(infra) -> None:
    env = gateway_env(infra.redis_url, unique("gwkill"))
    gateway = TierProcess("gateway", "gateway", args=["--workers", "2"], env=env, listens=True).start()
    try:
        wait_until(lambda: len(children(gateway.pid)) == 2, T, "two workers")
        workers = children(gateway.pid)
        gateway.kill()  # SIGKILL: the supervisor runs no code at all
        wait_until(lambda: not any(alive(pid) for pid in workers), T, "orphans to die")
    finally:
        gateway.stop()
