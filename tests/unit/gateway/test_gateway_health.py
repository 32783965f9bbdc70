"""/health and /metrics from per-pair freshness: a hub with replicas in every state.

One broken pair must no longer take the whole gateway out of rotation, and a stopped pipeline
makes pairs stale without making the gateway unready. The pure rules behind the verdicts are
tested in ``tests/unit/gateway/core/test_gateway_freshness.py``.
"""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import GatewayConfig
from gateway.core.freshness import Freshness
from gateway.core.replica import ReplicaState
from gateway.health import assess, health_report
from gateway.hub import Hub
from gateway.memory_store import MemoryStreams
from gateway.metrics import GatewayMetrics
from gateway.pipeline_watch import PipelineWatch
from mdcore.messages import Delta
from tests.unit.gateway.md_service_free_fixtures import Stream

MD_UP = {"v": 1, "kind": "md", "id": "md-1", "kafka": "up", "redis": "up"}

DELTA = Delta("BTC-USD", "e1", 1, 0, 0, [], [], 0)  # what arrived does not matter to the rhythm


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hub_with(states: dict[str, str], clock: Clock) -> tuple[Hub, PipelineWatch]:
    """A hub whose replicas are live, or stuck loading since long ago ("broken")."""
    cfg = GatewayConfig(redis_url="redis://127.0.0.1:1/0", stale_s=5.0)
    hub = Hub(cfg, store=MemoryStreams().connect, clock=clock)
    watch = PipelineWatch(hub, clock=clock)
    hub.claim(list(states))  # a channel (and replica) per pair, as a subscribe in progress makes
    for pair, state in states.items():
        replica = hub.channels[pair].replica
        if state == "live":
            replica.local = Stream(pair, 1).book_at(1)
            replica.state, replica.not_live_since = ReplicaState.LIVE, None
        else:
            replica.not_live_since = clock.now - 60.0
    return hub, watch


def feed(watch: PipelineWatch, clock: Clock, pairs: list[str], gaps: int = 20, every_s: float = 0.1) -> None:
    for _ in range(gaps):
        clock.now += every_s
        for pair in pairs:
            watch.on_delta(pair, DELTA)


def test_one_broken_pair_degrades_only_itself_most_broken_make_the_gateway_unready() -> None:
    clock = Clock()
    hub, watch = hub_with({"BTC-USD": "live", "ETH-USD": "live", "SOL-USD": "broken"}, clock)
    hub.link.up = True
    status, body = health_report(hub, watch, clock.now)
    assert status == 200 and body["ready"] and body["status"] == "degraded"
    assert body["stale_pairs"] == ["SOL-USD"]
    assert body["pairs"]["SOL-USD"]["freshness"] == "stale"
    assert body["pairs"]["SOL-USD"]["stale_reason"] == "not_live"
    assert body["pairs"]["BTC-USD"]["freshness"] == "live"
    hub.channels["ETH-USD"].replica.state = ReplicaState.LOADING  # now 2 of 3 are stuck here
    hub.channels["ETH-USD"].replica.not_live_since = clock.now - 60.0
    status, body = health_report(hub, watch, clock.now)
    assert status == 503 and not body["ready"] and body["status"] == "unavailable"
    assert "2 of 3 pairs stale here" in body["reasons"]


def test_a_stopped_pipeline_makes_pairs_stale_but_keeps_the_gateway_ready() -> None:
    clock = Clock()
    hub, watch = hub_with({"BTC-USD": "live", "ETH-USD": "live"}, clock)
    hub.link.up = True
    feed(watch, clock, ["BTC-USD", "ETH-USD"])
    watch.pipeline.observe([MD_UP], clock.now)
    status, body = health_report(hub, watch, clock.now)
    assert status == 200 and body["status"] == "ok" and body["pipeline"]["state"] == "up"
    assert body["pairs"]["BTC-USD"]["usual_gap_s"] == pytest.approx(0.1)

    clock.now += 4.0  # no delta for 4 s, 40 of its usual gaps, md_service still says it works
    watch.pipeline.observe([MD_UP], clock.now)
    assert {p["freshness"] for p in health_report(hub, watch, clock.now)[1]["pairs"].values()} == {"quiet"}

    clock.now += 1.0
    watch.pipeline.observe([], clock.now)  # md_service's status expired: it stopped
    status, body = health_report(hub, watch, clock.now)
    assert status == 200 and body["ready"] and body["status"] == "degraded"
    assert body["stale_pairs"] == ["BTC-USD", "ETH-USD"]
    assert {p["stale_reason"] for p in body["pairs"].values()} == {"pipeline_down"}
    assert body["pipeline"]["state"] == "down" and body["pipeline"]["silent_s"] == 1.0
    assert any("pipeline down" in r for r in body["reasons"])

    families = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(GatewayMetrics(hub, watch=watch).render().decode())
        for s in f.samples
    }
    assert families[("bookcast_gateway_ready", ())] == 1
    assert families[("bookcast_gateway_pipeline", (("state", "down"),))] == 1
    assert families[("bookcast_gateway_pairs", (("freshness", "stale"),))] == 2
    assert families[("bookcast_gateway_pair_stale", (("pair", "BTC-USD"),))] == 1
    assert families[("bookcast_gateway_pair_delta_age_seconds", (("pair", "ETH-USD"),))] == pytest.approx(5.0)
    assert families[("bookcast_gateway_pair_usual_gap_seconds", (("pair", "ETH-USD"),))] == pytest.approx(0.1)


def test_without_a_watch_nothing_is_learned_and_quiet_pairs_stay_live() -> None:
    clock = Clock()
    hub, _ = hub_with({"BTC-USD": "live"}, clock)
    hub.link.up = True
    found = assess(hub, None, clock.now + 3600)
    assert found.ready and found.pairs["BTC-USD"].freshness is Freshness.LIVE
    assert found.pipeline.state == "unknown"
