"""``/health`` tells the truth: a quiet pair is fine, a dead subscription, a pair that cannot load or a
stopped pipeline is not, and each is reported where it belongs: per pair, or for the whole gateway.

Each test runs its own Redis so that it can freeze it (SIGSTOP: the TCP connection stays
up, nothing answers — the failure a "connected" check misses) or corrupt a stored stream.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import pytest
import redis

from bookcast.bench.fanout_publisher import SyntheticPublisher
from bookcast.embedded_redis import EmbeddedRedis
from mdcore.redis_layout import RedisLayout
from mdcore.status_bus import encode_status, index_key, status_key
from tests.integration.gateway_helpers import PAIRS, Probe, counters, http_get, start_gateway
from tests.integration.stack_helpers import unique, wait_until

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


async def test_a_pair_that_cannot_be_loaded_is_stale_alone_until_most_are(own_redis) -> None:
    """One broken pair degrades only itself; the gateway leaves rotation only when most of its pairs are."""
    prefix = unique("gwbroken")
    publisher = SyntheticPublisher(own_redis.url, prefix, PAIRS, seed=4)
    publisher.window()
    client = redis.Redis.from_url(own_redis.url)
    for pair in ("SOL-USD", "XRP-USD"):
        client.set(RedisLayout(prefix).snapshot_key(pair), b"{not a snapshot")
    gateway = start_gateway(own_redis.url, prefix, **FAST)
    try:
        probe = await Probe.open(gateway.ws_url)
        await probe.send(op="subscribe", pairs=["SOL-USD", "BTC-USD"], id=1)
        await probe.wait_seq("BTC-USD", publisher.pairs["BTC-USD"].seq)  # the healthy pair is served
        wait_until(lambda: http_get(gateway, "/health")[1]["stale_pairs"] == ["SOL-USD"], T, "SOL-USD stale")
        status, body = http_get(gateway, "/health")
        assert status == 200 and body["ready"] and body["status"] == "degraded", body["reasons"]
        assert body["pairs"]["SOL-USD"]["freshness"] == "stale"
        assert body["pairs"]["SOL-USD"]["stale_reason"] == "not_live"
        assert body["pairs"]["BTC-USD"]["freshness"] == "live"
        assert probe.seq("SOL-USD") == -1  # no snapshot was invented

        await probe.send(op="subscribe", pairs=["XRP-USD"], id=2)  # now 2 of 3 cannot be loaded here
        wait_until(lambda: http_get(gateway, "/health")[0] == 503, T, "most pairs stale to be reported")
        body = http_get(gateway, "/health")[1]
        assert body["stale_pairs"] == ["SOL-USD", "XRP-USD"] and body["redis"] == "up"
        assert "2 of 3 pairs stale here" in body["reasons"]

        publisher.new_epoch()  # md_service starts the streams over, with good snapshots
        publisher.window(pairs=["SOL-USD", "XRP-USD"])
        await probe.wait_seq("SOL-USD", 1)
        await probe.wait_seq("XRP-USD", 1)
        wait_until(lambda: http_get(gateway, "/health")[1]["stale_pairs"] == [], T, "healthy again")
        assert http_get(gateway, "/health")[0] == 200
        assert probe.books["SOL-USD"].book == publisher.pairs["SOL-USD"].book
        await probe.close()
    finally:
        gateway.stop()
        client.close()
        publisher.close()


class MdHeartbeat:
    """Writes an md_service status to the status bus, as md_service's StatusPublisher does."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.key = status_key(prefix, "md", "test-md")

    def beat(self, kafka: str = "up") -> None:
        now_ms = time.time_ns() // 1_000_000
        status = {"v": 1, "kind": "md", "id": "test-md", "t": now_ms, "kafka": kafka, "redis": "up"}
        self.client.set(self.key, encode_status(status), px=60_000)  # deleted below to stop it
        self.client.zadd(index_key(self.prefix), {self.key: now_ms + 60_000})

    def stop(self) -> None:
        self.client.delete(self.key)  # what its expiry does a few seconds after md_service stops


def pair_health(gateway, pair: str) -> dict:
    return http_get(gateway, "/health")[1]["pairs"].get(pair, {})


async def test_md_services_heartbeat_tells_a_quiet_market_from_a_stopped_pipeline(own_redis) -> None:
    prefix = unique("gwbeat")
    publisher = SyntheticPublisher(own_redis.url, prefix, PAIRS, seed=6)
    publisher.window()
    client = redis.Redis.from_url(own_redis.url)
    md = MdHeartbeat(client, prefix)
    md.beat()
    gateway = start_gateway(own_redis.url, prefix, **FAST, overdue_min_s="0.5", md_heartbeat_s="0.2")
    try:
        probe = await Probe.open(gateway.ws_url)
        await probe.send(op="subscribe", pairs=["BTC-USD"], id=1)
        await probe.wait_seq("BTC-USD", publisher.pairs["BTC-USD"].seq)
        for _ in range(15):  # a rhythm of one window every 50 ms, which the gateway learns
            publisher.window(pairs=["BTC-USD"])
            await asyncio.sleep(0.05)
        await probe.wait_seq("BTC-USD", publisher.pairs["BTC-USD"].seq)
        wait_until(lambda: http_get(gateway, "/health")[1]["pipeline"]["state"] == "up", T, "the heartbeat")
        assert pair_health(gateway, "BTC-USD")["usual_gap_s"] is not None

        # silence while md_service says it works: a quiet market, not a fault
        wait_until(lambda: pair_health(gateway, "BTC-USD")["freshness"] == "quiet", T, "BTC-USD quiet")
        status, body = http_get(gateway, "/health")
        assert status == 200 and body["status"] == "ok" and body["stale_pairs"] == []

        md.stop()  # md_service stopped: the same silence is now a stale book
        wait_until(lambda: pair_health(gateway, "BTC-USD")["freshness"] == "stale", T, "BTC-USD stale")
        status, body = http_get(gateway, "/health")
        assert status == 200 and body["ready"] and body["status"] == "degraded"  # every gateway is as stale
        assert body["pairs"]["BTC-USD"]["stale_reason"] == "pipeline_down"
        assert body["pipeline"]["state"] == "down" and body["stale_pairs"] == ["BTC-USD"]

        md.beat(kafka="down")  # back, but it cannot read the exchange's events
        wait_until(lambda: "kafka" in http_get(gateway, "/health")[1]["pipeline"]["reason"], T, "kafka down")
        assert pair_health(gateway, "BTC-USD")["freshness"] == "stale"

        md.beat()
        publisher.window(pairs=["BTC-USD"])
        await probe.wait_seq("BTC-USD", publisher.pairs["BTC-USD"].seq)
        wait_until(lambda: pair_health(gateway, "BTC-USD")["freshness"] == "live", T, "BTC-USD live again")
        await probe.close()
    finally:
        gateway.stop()
        client.close()
        publisher.close()
