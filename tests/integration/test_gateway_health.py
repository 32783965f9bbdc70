"""``/health`` tells the truth: a quiet pair is fine, a dead subscription or a pair that cannot load is not.

Each test runs its own Redis so that it can freeze it (SIGSTOP: the TCP connection stays
up, nothing answers — the failure a "connected" check misses) or corrupt a stored stream.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
import redis
from stack_helpers import unique, wait_until
from test_gateway_stream import PAIRS, Probe, counters, http_get, start_gateway

from bookcast.bench.fanout_publisher import SyntheticPublisher
from bookcast.embedded import EmbeddedRedis
from mdcore.redis_layout import RedisLayout

pytestmark = pytest.mark.integration

T = 20.0
FAST = {"redis_ping_s": "0.2", "redis_dead_s": "1", "audit_s": "0.3", "stale_s": "1"}


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        if server.running:
            os.kill(server.pid, signal.SIGCONT)
        server.stop()


async def test_quiet_pairs_are_healthy_and_a_frozen_redis_is_not(own_redis) -> None:
    prefix = unique("gwhealth")
    publisher = SyntheticPublisher(own_redis.url, prefix, PAIRS, seed=9)
    publisher.window()
    gateway = start_gateway(own_redis.url, prefix, **FAST)
    try:
        probe = await Probe.open(gateway.ws_url)
        await probe.send(op="subscribe", pairs=["BTC-USD", "ETH-USD"], id=1)
        await probe.wait_seq("ETH-USD", publisher.pairs["ETH-USD"].seq)
        # nothing is published for several audit periods and stale_s: quiet, not stale
        before = counters(gateway).get("flushes", 0)
        wait_until(lambda: _audits_passed(gateway, 5), T, "five audits")
        status, body = http_get(gateway, "/health")
        assert status == 200 and body["ready"] and body["stale_pairs"] == []
        assert body["pairs"]["BTC-USD"]["state"] == "live" and body["pairs"]["BTC-USD"]["age_s"] >= 1
        assert counters(gateway).get("flushes", 0) == before

        os.kill(own_redis.pid, signal.SIGSTOP)  # connected, silent: a dead subscription
        wait_until(lambda: http_get(gateway, "/health")[0] == 503, T, "the dead link to be reported")
        status, body = http_get(gateway, "/health")
        assert body["redis"] == "down" and not body["ready"] and "redis link down" in body["reasons"][0]
        assert counters(gateway)["redis_dead_links"] >= 1
        os.kill(own_redis.pid, signal.SIGCONT)
        wait_until(lambda: http_get(gateway, "/health")[0] == 200, T, "recovery")
        publisher.window(pairs=["BTC-USD"])
        await probe.wait_seq("BTC-USD", publisher.pairs["BTC-USD"].seq)
        await probe.close()
    finally:
        gateway.stop()
        publisher.close()


def _audits_passed(gateway, n: int) -> bool:
    """Whether the gateway has been up long enough for ``n`` audits (0.3 s each) since its link came up."""
    status, body = http_get(gateway, "/health")
    ages = [p["age_s"] for p in body["pairs"].values()]
    return status == 200 and bool(ages) and min(ages) >= n * 0.3


async def test_a_pair_whose_stream_cannot_be_loaded_is_stale_until_it_can(own_redis) -> None:
    prefix = unique("gwbroken")
    publisher = SyntheticPublisher(own_redis.url, prefix, PAIRS, seed=4)
    publisher.window()
    client = redis.Redis.from_url(own_redis.url)
    client.set(RedisLayout(prefix).snapshot_key("SOL-USD"), b"{not a snapshot")
    gateway = start_gateway(own_redis.url, prefix, **FAST)
    try:
        probe = await Probe.open(gateway.ws_url)
        await probe.send(op="subscribe", pairs=["SOL-USD", "BTC-USD"], id=1)
        await probe.wait_seq("BTC-USD", publisher.pairs["BTC-USD"].seq)  # the healthy pair is served
        wait_until(lambda: http_get(gateway, "/health")[0] == 503, T, "the stale pair to be reported")
        body = http_get(gateway, "/health")[1]
        assert body["stale_pairs"] == ["SOL-USD"] and body["redis"] == "up"
        assert probe.seq("SOL-USD") == -1  # no snapshot was invented
        publisher.new_epoch()  # md_service starts the stream over, with a good snapshot
        publisher.window(pairs=["SOL-USD"])
        await probe.wait_seq("SOL-USD", 1)
        wait_until(lambda: http_get(gateway, "/health")[0] == 200, T, "healthy again")
        assert probe.books["SOL-USD"].book == publisher.pairs["SOL-USD"].book
        await probe.close()
    finally:
        gateway.stop()
        client.close()
        publisher.close()
