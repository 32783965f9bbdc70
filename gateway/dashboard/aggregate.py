"""The dashboard's numbers, as pure functions: a gateway's own status, and the one-second message.

A gateway turns its counters into a status (:func:`gateway_status`: rates over the last
interval, gauges, latency of the interval) and publishes it on the status bus
(:mod:`mdcore.status_bus`), next to md_service's and the load generators'. The page's
message (:func:`combine`) adds up the statuses of every tier: rates and gauges are summed,
latency histograms merged bucket by bucket, so the percentiles shown are those of all
gateways (or all clients) together, not an average of percentiles.

The message is what ``dashboard.html`` reads in ``ingest()``; docs/observability.md lists
every field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mdcore.latency import LatencyHistogram
from mdcore.status_bus import STATUS_VERSION, block_histogram, latency_block, rates

# status rate name -> gateway counter it is the rate of (gateway/core/counters.py)
GATEWAY_RATES: dict[str, str] = {
    "frames_per_s": "frames_out",
    "bytes_per_s": "bytes_out",
    "redis_messages_per_s": "redis_messages",
    "deltas_in_per_s": "deltas_in",
    "deltas_out_per_s": "deltas_out",
    "gaps_per_s": "replica_gaps",
    "gaps_filled_per_s": "replica_history_fills",
    "reloads_per_s": "replica_reloads",
    "resyncs_per_s": "resyncs",
    "conflations_per_s": "slow_conflations",
    "slow_disconnects_per_s": "closed_slow",
    "snapshots_per_s": "snapshots_sent",
    "recoveries_per_s": "recoveries",
    "connections_opened_per_s": "connections_opened",
}
GATEWAY_TOTALS: dict[str, str] = {
    "gaps": "replica_gaps",
    "resyncs": "resyncs",
    "conflations": "slow_conflations",
    "slow_disconnects": "closed_slow",
    "frames": "frames_out",
    "redis_messages": "redis_messages",
}
GATEWAY_STAGES = ("close_to_gateway", "exchange_to_gateway")
MD_STAGES = ("exchange_to_close", "close_to_publish")
CLIENT_STAGES = ("close_to_client", "exchange_to_client")
STAGES = ("exchange_to_close", "close_to_publish", *GATEWAY_STAGES, *CLIENT_STAGES)


def _errors(counters: Mapping[str, int]) -> int:
    return sum(v for k, v in counters.items() if k.startswith("errors_"))


def gateway_status(
    instance: str,
    t_ms: int,
    interval_s: float,
    counters: Mapping[str, int],
    before: Mapping[str, int],
    gauges: Mapping[str, int | bool],
    latency: Mapping[str, LatencyHistogram],
) -> dict[str, Any]:
    """One gateway process's status: rates since ``before`` (``interval_s`` ago), gauges, latency.

    ``gauges``: ``connections``, ``subscriptions``, ``stale_clients``, ``replicas``,
    ``redis_up`` (bool). ``latency``: the interval's histogram per stage.
    """
    chosen_now = {name: counters.get(counter, 0) for name, counter in GATEWAY_RATES.items()}
    chosen_before = {name: before.get(counter, 0) for name, counter in GATEWAY_RATES.items()}
    chosen_now["errors_per_s"], chosen_before["errors_per_s"] = _errors(counters), _errors(before)
    return {
        "v": STATUS_VERSION,
        "kind": "gateway",
        "id": instance,
        "t": t_ms,
        "interval_s": interval_s,
        "rates": rates(chosen_now, chosen_before, interval_s),
        "totals": {name: counters.get(counter, 0) for name, counter in GATEWAY_TOTALS.items()},
        "connections": int(gauges.get("connections", 0)),
        "subscriptions": int(gauges.get("subscriptions", 0)),
        "stale_clients": int(gauges.get("stale_clients", 0)),
        "replicas": int(gauges.get("replicas", 0)),
        "redis": "up" if gauges.get("redis_up") else "down",
        "latency": {stage: latency_block(hist) for stage, hist in latency.items()},
    }


def _sum(statuses: Iterable[Mapping[str, Any]], *path: str) -> float:
    total = 0.0
    for status in statuses:
        value: Any = status
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            total += value
    return total


def _rate_sums(statuses: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    names = {name for s in statuses for name in (s.get("rates") or {})}
    return {name: round(_sum(statuses, "rates", name), 3) for name in sorted(names)}


def merged_latency(statuses: Iterable[Mapping[str, Any]], stage: str) -> LatencyHistogram:
    """One stage's histograms of several statuses, added up."""
    merged = LatencyHistogram()
    for status in statuses:
        block = (status.get("latency") or {}).get(stage)
        if isinstance(block, Mapping):
            merged.add(block_histogram(block))
    return merged


def _latency(statuses: Sequence[Mapping[str, Any]], stage: str) -> dict[str, float | int] | None:
    hist = merged_latency(statuses, stage)
    return hist.summary_ms() if hist.count else None


def _link(statuses: Sequence[Mapping[str, Any]]) -> str:
    if not statuses:
        return "?"
    return "up" if all(s.get("redis") == "up" for s in statuses) else "down"


def kafka_link(mds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """md_service's Kafka link over every instance: one down instance makes it ``down``, named.

    Unlike ``redis``, an instance that does not say (no ``kafka`` field: an md_service older
    than it; or ``unknown``: one without a Kafka link) is not counted as down, nor as up: the
    link is ``up`` only when every instance says so, else ``unknown`` unless one says
    ``down``. ``?``: no md instance reports. ``kafka_down`` / ``kafka_unknown`` name them.
    """
    down = sorted(str(s.get("id", "?")) for s in mds if s.get("kafka") == "down")
    unknown = sorted(str(s.get("id", "?")) for s in mds if s.get("kafka") not in ("up", "down"))
    state = "?" if not mds else "down" if down else "unknown" if unknown else "up"
    return {"kafka": state, "kafka_down": down, "kafka_unknown": unknown}


def combine(
    t_ms: int,
    gateways: Sequence[Mapping[str, Any]],
    mds: Sequence[Mapping[str, Any]],
    loads: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The dashboard message of one second from every tier's latest status."""
    gw_rates = _rate_sums(gateways)
    redis_in = gw_rates.get("redis_messages_per_s", 0.0)
    gateway: dict[str, Any] = {
        "instances": len(gateways),
        "connections": int(_sum(gateways, "connections")),
        "subscriptions": int(_sum(gateways, "subscriptions")),
        "stale_clients": int(_sum(gateways, "stale_clients")),
        "redis": _link(gateways),
        **gw_rates,
        "fanout_ratio": round(gw_rates.get("frames_per_s", 0.0) / redis_in, 3) if redis_in > 0 else None,
        **{f"{name}_total": int(_sum(gateways, "totals", name)) for name in GATEWAY_TOTALS},
    }
    md_rates = _rate_sums(mds)
    deltas = md_rates.get("deltas_per_s", 0.0)
    lags = [s["consumer_lag"] for s in mds if isinstance(s.get("consumer_lag"), int)]
    md: dict[str, Any] = {
        "instances": len(mds),
        "redis": _link(mds),
        **kafka_link(mds),
        "pairs": int(_sum(mds, "pairs")),
        "partitions": sorted({p for s in mds for p in s.get("partitions") or () if isinstance(p, int)}),
        **md_rates,
        "events_per_delta": round(md_rates.get("events_per_s", 0.0) / deltas, 2) if deltas > 0 else None,
        "consumer_lag": sum(lags) if lags else None,
    }
    client_rates = _rate_sums(loads)
    clients: dict[str, Any] = {
        "instances": len(loads),
        "open": int(_sum(loads, "open")),
        "connections": int(_sum(loads, "connections")),
        **client_rates,
        **{f"{name}_total": int(_sum(loads, "totals", name)) for name in ("gaps", "resyncs", "deltas")},
    }
    sources = {
        **dict.fromkeys(MD_STAGES, mds),
        **dict.fromkeys(GATEWAY_STAGES, gateways),
        **dict.fromkeys(CLIENT_STAGES, loads),
    }
    return {
        "t": t_ms,
        "gateway": gateway,
        "md": md,
        "clients": clients,
        "latency_ms": {stage: _latency(sources[stage], stage) for stage in STAGES},
    }
