"""``/health``: an honest readiness answer, and an honest verdict for every pair.

Readiness is about *this* gateway: whether a load balancer should send clients here rather
than to another one. It is lost only when the gateway cannot serve at all: its Redis
subscription does not answer pings (not merely "connected"), it is shutting down, or more
than ``unready_stale_fraction`` (half) of its wanted pairs are stale *for reasons of its
own* (a replica that cannot load or catch up for ``stale_s``, or that the audit found
behind md_service). One broken pair does not take a gateway out of rotation.

Each pair gets a freshness verdict (:mod:`gateway.core.freshness`): ``live``, ``quiet``,
``overdue``, ``stale``, ``loading`` or ``no_data``. A pipeline that stopped (md_service
silent, or its Kafka or Redis link down) makes every live pair ``stale`` and the gateway
``degraded``, but still ready: every gateway is equally affected, and pulling them all out
of rotation would leave clients nothing to reconnect to when it comes back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.core.freshness import Freshness, PairInputs, PipelineState, StaleReason, judge
from gateway.core.replica import ReplicaState
from gateway.hub import Hub
from gateway.pipeline_watch import PipelineWatch


@dataclass(frozen=True, slots=True)
class PairHealth:
    freshness: Freshness
    reason: StaleReason | None
    age_s: float
    usual_gap_s: float | None


@dataclass(slots=True)
class Assessment:
    """Every wanted pair's verdict and the gateway's readiness, as of one moment."""

    pairs: dict[str, PairHealth] = field(default_factory=dict)
    ready: bool = True
    reasons: list[str] = field(default_factory=list)
    pipeline: PipelineState = field(default_factory=PipelineState)

    @property
    def stale(self) -> list[str]:
        return [p for p, h in self.pairs.items() if h.freshness is Freshness.STALE]

    def count(self, freshness: Freshness) -> int:
        return sum(1 for h in self.pairs.values() if h.freshness is freshness)


def _now(watch: PipelineWatch | None) -> float:
    return watch.clock() if watch is not None else time.monotonic()


def _local_stale(hub: Hub, pair: str, now: float) -> StaleReason | None:
    replica = hub.channels[pair].replica
    since = replica.not_live_since
    if replica.state is not ReplicaState.NO_DATA and since is not None and now - since >= hub.cfg.stale_s:
        return StaleReason.NOT_LIVE
    if hub.recently_fixed(pair, now):
        return StaleReason.BEHIND
    return None


def assess(hub: Hub, watch: PipelineWatch | None = None, now: float | None = None) -> Assessment:
    """Judge every wanted pair and the gateway (``watch`` None: no rhythm, heartbeat unknown)."""
    now = _now(watch) if now is None else now
    cfg = hub.cfg
    result = Assessment(pipeline=watch.pipeline if watch is not None else PipelineState())
    local_stale = judged = 0
    for pair, channel in sorted(hub.channels.items()):
        replica = channel.replica
        last = watch.gaps.last_arrival(pair) if watch is not None else None
        age = now - max(replica.last_update, last if last is not None else replica.last_update)
        usual = watch.gaps.usual_gap(pair) if watch is not None else None
        inputs = PairInputs(replica.state.value, _local_stale(hub, pair, now), age, usual)
        freshness, reason = judge(inputs, result.pipeline.state, cfg.overdue_factor, cfg.overdue_min_s)
        result.pairs[pair] = PairHealth(freshness, reason, round(age, 3), usual)
        if freshness is not Freshness.NO_DATA:
            judged += 1
        if reason is not None and reason.local:
            local_stale += 1
    link = hub.link
    nodes = link.health()["nodes"]
    down_nodes = sorted(name for name, node in nodes.items() if not node["up"])
    if not link.up:
        down = link.down_since
        which = f" ({', '.join(down_nodes)})" if 0 < len(down_nodes) < len(nodes) else ""
        result.reasons.append(
            "redis link down" + which + (f" for {now - down:.1f}s" if down is not None else "")
        )
    # On a cluster, pairs on healthy nodes keep flowing: one node down makes its pairs stale
    # (judged below, and too many stale pairs make the gateway unready), not the whole gateway.
    usable = link.up or len(down_nodes) < len(nodes)
    too_stale = local_stale > cfg.unready_stale_fraction * judged
    if too_stale:
        result.reasons.append(f"{local_stale} of {judged} pairs stale here")
    if hub.shutting_down:
        result.reasons.append("shutting down")
    result.ready = usable and not too_stale and not hub.shutting_down
    if result.pipeline.state == "down":
        result.reasons.append(f"pipeline down: {result.pipeline.reason}")
    stale = len(result.stale)
    if stale and not too_stale:
        result.reasons.append(f"{stale} stale pair(s)")
    return result


def health_report(
    hub: Hub, watch: PipelineWatch | None = None, now: float | None = None
) -> tuple[int, dict[str, object]]:
    """``(HTTP status, body)``: 200 when ready, 503 when not; the body says why, pair by pair."""
    now = _now(watch) if now is None else now
    found = assess(hub, watch, now)
    pairs: dict[str, object] = {}
    for pair, verdict in found.pairs.items():
        replica = hub.channels[pair].replica
        local = replica.local
        pairs[pair] = {
            "state": replica.state.value,
            "freshness": verdict.freshness.value,
            "stale_reason": verdict.reason.value if verdict.reason is not None else None,
            "seq": local.seq if local else None,
            "epoch": local.epoch if local else None,
            "age_s": verdict.age_s,
            "usual_gap_s": round(verdict.usual_gap_s, 3) if verdict.usual_gap_s is not None else None,
            "subscribers": len(hub.channels[pair].subscribers),
            "gaps": replica.gaps,
            "reloads": replica.reloads,
            "stale": verdict.freshness is Freshness.STALE,
        }
    pipeline = found.pipeline
    degraded = bool(found.stale) or pipeline.state == "down" or found.count(Freshness.OVERDUE) > 0
    body: dict[str, object] = {
        "status": "unavailable" if not found.ready else "degraded" if degraded else "ok",
        "live": True,
        "ready": found.ready,
        "reasons": found.reasons,
        "redis": "up" if hub.link.up else "down",
        "redis_nodes": hub.link.health()["nodes"],
        "pipeline": {
            "state": pipeline.state,
            "reason": pipeline.reason,
            "md_instances": pipeline.instances,
            "silent_s": pipeline.silent_s(now),
        },
        "stale_pairs": found.stale,
        "freshness": {f.value: found.count(f) for f in Freshness},
        "connections": len(hub.sessions),
        "stale_clients": sum(1 for s in hub.sessions if s.lagging),
        "pairs": pairs,
        "counters": hub.counters.as_dict(),
    }
    return (200 if found.ready else 503), body
