"""The dashboard's numbers: a gateway's status from its counters, and the combined message."""

from __future__ import annotations

from gateway.dashboard.aggregate import STAGES, combine, gateway_status, kafka_link
from mdcore.latency import LatencyHistogram
from mdcore.status_bus import latency_block


def hist(*values_us: int) -> LatencyHistogram:
    h = LatencyHistogram()
    for v in values_us:
        h.record(v)
    return h


def a_gateway(instance: str, frames: int, redis: int, connections: int, close_us: list[int], up: bool = True):
    before = {"frames_out": 0, "redis_messages": 0, "replica_gaps": 1, "resyncs": 0, "errors_bad_json": 2}
    now = {"frames_out": frames, "redis_messages": redis, "replica_gaps": 3, "resyncs": 4,
           "errors_bad_json": 5, "errors_unknown_pair": 1, "slow_conflations": 2}  # fmt: skip
    gauges = {"connections": connections, "subscriptions": 2 * connections, "redis_up": up}
    latency = {
        "close_to_gateway": hist(*close_us),
        "exchange_to_gateway": hist(*(v + 50_000 for v in close_us)),
    }
    return gateway_status(instance, 1_000, 2.0, now, before, gauges, latency)


def test_gateway_status_rates_are_per_second_over_the_interval() -> None:
    status = a_gateway("gw-1", frames=400, redis=20, connections=7, close_us=[1000, 3000])
    assert status["kind"] == "gateway" and status["v"] == 1 and status["id"] == "gw-1"
    rates = status["rates"]
    assert rates["frames_per_s"] == 200.0 and rates["redis_messages_per_s"] == 10.0
    assert rates["gaps_per_s"] == 1.0 and rates["resyncs_per_s"] == 2.0 and rates["errors_per_s"] == 2.0
    assert status["totals"]["gaps"] == 3 and status["totals"]["conflations"] == 2
    assert status["connections"] == 7 and status["subscriptions"] == 14 and status["redis"] == "up"
    assert status["latency"]["close_to_gateway"]["count"] == 2
    assert status["latency"]["close_to_gateway"]["max"] == 3.0


def test_combine_adds_up_gateways_and_merges_their_latency_exactly() -> None:
    gw1 = a_gateway("gw-1", frames=400, redis=20, connections=7, close_us=[1000] * 98)
    gw2 = a_gateway("gw-2", frames=200, redis=20, connections=3, close_us=[9000, 20_000], up=False)
    md = {
        "v": 1, "kind": "md", "id": "md-1", "rates": {"events_per_s": 500.0, "deltas_per_s": 50.0},
        "consumer_lag": 12, "redis": "up", "pairs": 8, "partitions": [0, 1],
        "latency": {"exchange_to_close": latency_block(hist(40_000, 60_000))},
    }  # fmt: skip
    md2 = {"v": 1, "kind": "md", "id": "md-2", "rates": {"events_per_s": 100.0, "deltas_per_s": 10.0},
           "consumer_lag": None, "redis": "up", "pairs": 2, "partitions": [3]}  # fmt: skip
    load = {
        "v": 1, "kind": "load", "id": "l", "rates": {"frames_per_s": 300.0, "resyncs_per_s": 0.5},
        "totals": {"resyncs": 3, "gaps": 1, "deltas": 900}, "open": 10, "connections": 12,
        "latency": {"close_to_client": latency_block(hist(2000, 4000)), "exchange_to_client": {"bad": 1}},
    }  # fmt: skip
    message = combine(5_000, [gw1, gw2], [md, md2], [load])
    assert message["t"] == 5_000
    gw = message["gateway"]
    assert gw["instances"] == 2 and gw["connections"] == 10 and gw["subscriptions"] == 20
    assert gw["frames_per_s"] == 300.0 and gw["redis_messages_per_s"] == 20.0 and gw["fanout_ratio"] == 15.0
    assert gw["redis"] == "down" and gw["gaps_total"] == 6 and gw["resyncs_per_s"] == 4.0
    assert message["md"]["instances"] == 2 and message["md"]["events_per_s"] == 600.0
    assert message["md"]["consumer_lag"] == 12 and message["md"]["events_per_delta"] == 10.0
    assert message["md"]["partitions"] == [0, 1, 3] and message["md"]["pairs"] == 10
    assert message["clients"]["open"] == 10 and message["clients"]["resyncs_total"] == 3
    lat = message["latency_ms"]
    assert set(lat) == set(STAGES)
    # 100 values over both gateways: 98 at 1 ms, then 9 ms and 20 ms. p99 is the 99th: 9 ms.
    close = lat["close_to_gateway"]
    assert close["count"] == 100 and 1.0 <= close["p50"] <= 1.016 and 9.0 <= close["p99"] <= 9.15
    assert close["max"] == 20.0  # exact: each block carries its maximum
    assert lat["exchange_to_close"]["count"] == 2 and lat["exchange_to_close"]["max"] == 60.0
    assert 2.0 <= lat["close_to_client"]["p50"] <= 2.032
    assert lat["exchange_to_client"] is None and lat["close_to_publish"] is None


def test_combine_with_nothing_but_this_gateway() -> None:
    gw = a_gateway("gw-1", frames=0, redis=0, connections=0, close_us=[])
    message = combine(1, [gw], [], [])
    assert message["gateway"]["fanout_ratio"] is None and message["md"]["instances"] == 0
    assert message["md"]["consumer_lag"] is None and message["clients"]["instances"] == 0
    md = message["md"]
    assert (md["kafka"], md["kafka_down"], md["kafka_unknown"]) == ("?", [], [])
    assert all(v is None for v in message["latency_ms"].values())


def an_md(instance: str, **link: str) -> dict:
    """An md status with only what the links need; ``kafka`` left out is an md_service older than it."""
    return {"v": 1, "kind": "md", "id": instance, "rates": {}, "redis": "up", **link}


def test_kafka_is_up_when_every_md_instance_says_up() -> None:
    message = combine(1, [], [an_md("md-1", kafka="up"), an_md("md-2", kafka="up")], [])
    md = message["md"]
    assert (md["kafka"], md["kafka_down"], md["kafka_unknown"]) == ("up", [], [])


def test_kafka_is_down_when_one_md_instance_says_down_and_names_it() -> None:
    mds = [an_md("md-b", kafka="down"), an_md("md-a", kafka="up"), an_md("md-c")]
    md = combine(1, [], mds, [])["md"]
    assert (md["kafka"], md["kafka_down"], md["kafka_unknown"]) == ("down", ["md-b"], ["md-c"])
    assert md["redis"] == "up"  # the Redis link is judged apart
    both = kafka_link([an_md("md-2", kafka="down"), an_md("md-1", kafka="down")])
    assert both == {"kafka": "down", "kafka_down": ["md-1", "md-2"], "kafka_unknown": []}


def test_an_md_instance_without_the_field_is_unknown_never_down_nor_up() -> None:
    older = kafka_link([an_md("md-old")])
    assert older == {"kafka": "unknown", "kafka_down": [], "kafka_unknown": ["md-old"]}
    mixed = kafka_link([an_md("md-new", kafka="up"), an_md("md-old"), an_md("md-test", kafka="unknown")])
    assert mixed == {"kafka": "unknown", "kafka_down": [], "kafka_unknown": ["md-old", "md-test"]}
