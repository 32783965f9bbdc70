"""The gateway's exporter and dashboard feed, with a real hub and fakes for clients and Redis.

The exporter must publish every documented name with the hub's values, time deltas from
their own bytes, answer on its port (and survive a taken one); the dashboard must publish
this gateway's status on the bus and send viewers the message combined with other tiers'.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from types import SimpleNamespace

import orjson
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from bookcast.loopback import free_port
from gateway.config import GatewayConfig
from gateway.dashboard.service import Dashboard, DashboardConfig, dashboard_routes, page_bytes
from gateway.hub import Hub
from gateway.metrics import GatewayMetrics, LatencyListener, MetricsConfig, load_metrics_config
from gateway.routes import Route, Router
from mdcore.latency import LatencyHistogram
from mdcore.messages import Delta
from mdcore.status_bus import decode_status, encode_status, latency_block
from tests.unit.gateway.gateway_fakes import FakeSession

NOW_NS = 1_700_000_000_000_000_000


def delta_at(close_ms_ago: float, exchange_ms_ago: float, seq: int = 1) -> Delta:
    ts, xts = NOW_NS - int(close_ms_ago * 1e6), NOW_NS - int(exchange_ms_ago * 1e6)
    return Delta("BTC-USD", "e1", seq, ts, xts, [["64000.00", "1"]], [], 7)


def busy_hub() -> tuple[Hub, LatencyListener]:
    hub = Hub(GatewayConfig(redis_url="redis://127.0.0.1:1/0"))
    hub.counters.update(
        frames_out=500, bytes_out=90_000, redis_messages=50, slow_conflations=2, closed_slow=1,
        snapshots_sent=9, recoveries=3, replica_gaps=4, replica_history_fills=3, resyncs=6,
    )  # fmt: skip
    hub.counters.count_error("bad_json")
    hub.counters.count_error("bad_json")
    hub.counters.count_close(1000)
    sessions = [FakeSession(), FakeSession(), FakeSession()]
    hub.claim(["BTC-USD", "ETH-USD"])
    for session in sessions:
        hub.open_session(session)
        hub.follow(session, "ETH-USD")
    for session in sessions[:2]:
        hub.follow(session, "BTC-USD")
    sessions[2].go_stale({}, 0.0)
    listener = LatencyListener(clock_ns=lambda: NOW_NS)
    for close_ms in (1, 2, 3, 40):
        listener.on_delta("BTC-USD", delta_at(close_ms, close_ms + 100))
    return hub, listener


def samples(text: bytes) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_the_exporter_publishes_the_documented_names_with_the_hubs_values() -> None:
    hub, listener = busy_hub()
    metrics = GatewayMetrics(hub, listener).attach()
    assert listener in hub.listeners
    got = samples(metrics.render())
    expected = {
        "connections": 3, "subscriptions": 5, "stale_clients": 1, "redis_up": 0, "frames_total": 500,
        "bytes_total": 90_000, "redis_messages_total": 50, "conflations_total": 2,
        "slow_disconnects_total": 1, "snapshots_total": 9, "recoveries_total": 3, "gaps_total": 4,
        "gaps_filled_total": 3, "resyncs_total": 6,
    }  # fmt: skip
    for name, value in expected.items():
        assert got[(f"bookcast_gateway_{name}", ())] == value, name
    assert got[("bookcast_gateway_errors_total", (("code", "bad_json"),))] == 2
    assert got[("bookcast_gateway_closes_total", (("code", "1000"),))] == 1
    assert got[("bookcast_gateway_counter_total", (("name", "frames_out"),))] == 500
    assert ("process_cpu_seconds_total", ()) in got
    close = (("stage", "close_to_gateway"),)
    assert got[("bookcast_gateway_latency_seconds_count", close)] == 4
    assert got[("bookcast_gateway_latency_seconds_bucket", (("le", "0.0025"), *close))] == 2  # 1 and 2 ms
    assert got[("bookcast_gateway_latency_seconds_bucket", (("le", "0.05"), *close))] == 4
    assert abs(got[("bookcast_gateway_latency_seconds_sum", close)] - 0.046) < 1e-6
    exchange = (("stage", "exchange_to_gateway"),)
    assert got[("bookcast_gateway_latency_seconds_bucket", (("le", "0.1"), *exchange))] == 0
    assert got[("bookcast_gateway_latency_seconds_count", exchange)] == 4


def test_metrics_port_setting_adds_the_worker_index() -> None:
    assert load_metrics_config({}) == MetricsConfig("127.0.0.1", 9100)
    assert (
        load_metrics_config({"BOOKCAST_GATEWAY_METRICS_PORT": "9200", "BOOKCAST_GATEWAY_WORKER": "3"}).port
        == 9203
    )
    assert not load_metrics_config(
        {"BOOKCAST_GATEWAY_METRICS_PORT": "0", "BOOKCAST_GATEWAY_WORKER": "3"}
    ).enabled
    assert load_metrics_config({"BOOKCAST_METRICS_HOST": "0.0.0.0"}).host == "0.0.0.0"


async def test_metrics_are_served_on_their_port_and_a_taken_port_is_only_a_warning(caplog) -> None:
    hub, listener = busy_hub()
    metrics = GatewayMetrics(hub, listener)
    port = free_port()
    assert await metrics.serve(MetricsConfig("127.0.0.1", port)) is not None
    try:
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read()
        )
        assert b"bookcast_gateway_frames_total 500.0" in body
        other = GatewayMetrics(hub, listener)
        with caplog.at_level(logging.WARNING):
            assert await other.serve(MetricsConfig("127.0.0.1", port)) is None
        assert "running without /metrics" in caplog.text
        assert await other.serve(MetricsConfig("127.0.0.1", 0)) is None  # 0: disabled
    finally:
        await metrics.close()


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def set(self, key: str, value: bytes, px: int) -> None:
        self.redis.values[key] = value
        self.redis.ttls[key] = px

    def zadd(self, key: str, mapping: dict[str, int]) -> None:
        self.redis.index.update(mapping)

    def zremrangebyscore(self, key: str, low: str, high: int) -> None:
        return None

    async def execute(self) -> None:
        return None


class FakeRedis:
    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.ttls: dict[str, int] = {}
        self.index: dict[str, int] = {}

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)

    async def zrangebyscore(self, key: str, low: int, high: str) -> list[bytes]:
        return [k.encode() for k, expires in self.index.items() if expires >= low]

    async def mget(self, keys: list[bytes]) -> list[bytes | None]:
        return [self.values.get(k.decode()) for k in keys]


class FakeLink:
    def __init__(self) -> None:
        self.client = FakeRedis()
        self.up = True


async def test_the_dashboard_publishes_this_gateway_and_feeds_viewers_the_whole_picture() -> None:
    hub, listener = busy_hub()
    hub.link = FakeLink()  # type: ignore[assignment]
    redis = hub.link.client  # type: ignore[attr-defined]
    dashboard = Dashboard(hub, listener, DashboardConfig(interval_s=1.0, instance="gw-a"))
    hub.counters["frames_out"] += 300  # during the interval
    hub.counters["redis_messages"] += 30
    listener.on_delta("BTC-USD", delta_at(5, 80))
    md = {
        "v": 1, "kind": "md", "id": "md-1", "t": 1, "rates": {"events_per_s": 250.0, "deltas_per_s": 25.0},
        "consumer_lag": 4, "redis": "up", "latency": {"exchange_to_close": latency_block(LatencyHistogram())},
    }  # fmt: skip
    redis.values["bc:{status}:md:md-1"] = encode_status(md)
    redis.index["bc:{status}:md:md-1"] = 2**62
    dashboard.prefix = "bc"

    async def handler(conn) -> None:
        await conn.wait_closed()

    async def process_request(conn, request):
        return None

    router = Router(
        [
            *dashboard_routes(dashboard, lambda *_: None),
            Route("native", lambda _p: True, process_request, handler),
        ]
    )
    routed_handler, routed_request = router.handler, router.process_request
    from websockets.asyncio.server import serve

    async with serve(routed_handler, "127.0.0.1", 0, process_request=routed_request) as server:
        port = server.sockets[0].getsockname()[1]
        page = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard").read()
        )
        assert page == page_bytes() and b"<canvas" in page and b"/dashboard/ws" in page
        async with connect(f"ws://127.0.0.1:{port}/dashboard/ws") as viewer:
            while not dashboard.viewers:
                await asyncio.sleep(0.01)
            await dashboard.tick()
            message = orjson.loads(await asyncio.wait_for(viewer.recv(), 5))
    own = decode_status(redis.values["bc:{status}:gateway:gw-a"])
    assert own is not None and own["id"] == "gw-a" and redis.ttls["bc:{status}:gateway:gw-a"] == 3000
    assert own["latency"]["close_to_gateway"]["count"] == 1  # only this interval's delta
    gw = message["gateway"]
    assert gw["instances"] == 1 and gw["connections"] == 3 and gw["redis"] == "up"
    assert gw["frames_per_s"] > 0 and 9.9 <= gw["fanout_ratio"] <= 10.1
    assert message["md"]["events_per_s"] == 250.0 and message["md"]["consumer_lag"] == 4
    assert message["latency_ms"]["close_to_gateway"]["count"] == 1
    assert 5.0 <= message["latency_ms"]["close_to_gateway"]["p50"] <= 5.1
    assert not dashboard.viewers


async def test_with_redis_down_viewers_still_see_this_gateway_at_once(monkeypatch) -> None:
    hub, listener = busy_hub()

    class Unreachable:
        def __getattr__(self, name: str):
            raise AssertionError("no Redis call while the link is down")

    hub.link = SimpleNamespace(up=False, client=Unreachable())  # type: ignore[assignment]
    dashboard = Dashboard(hub, listener, DashboardConfig(interval_s=1.0, instance="gw-a"))
    sent: list[str] = []
    dashboard.viewers.add(object())  # type: ignore[arg-type]
    monkeypatch.setattr("gateway.dashboard.service.broadcast", lambda conns, text: sent.append(text))
    await dashboard.tick()
    message = orjson.loads(sent[0])
    assert message["gateway"]["instances"] == 1 and message["gateway"]["redis"] == "down"
    assert message["md"]["instances"] == 0 and dashboard.bus_errors == 0
