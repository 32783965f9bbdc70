"""``/health``: an honest readiness answer.

Ready means: the Redis subscription is alive (it answers pings, not merely "connected"),
the gateway is not shutting down, and no wanted pair is stale. A quiet pair is not stale —
md_service publishes nothing for a window without changes — so staleness is judged against
md_service's state, not the clock: a pair is stale if its replica has not been live for
``stale_s`` (it cannot load or catch up), or if the audit recently found it behind the
stream (its deltas were not arriving).
"""

from __future__ import annotations

import time

from gateway.hub import Hub
from gateway.replica import ReplicaState


def health_report(hub: Hub, now: float | None = None) -> tuple[int, dict[str, object]]:
    """``(HTTP status, body)``: 200 when ready, 503 when not; the body says why."""
    now = time.monotonic() if now is None else now
    cfg = hub.cfg
    pairs: dict[str, object] = {}
    stale: list[str] = []
    for pair, replica in sorted(hub.replicas.items()):
        local = replica.local
        since = replica.not_live_since
        fixed_at = hub.audit_fixed_at.get(pair)
        is_stale = (
            replica.state is not ReplicaState.NO_DATA and since is not None and now - since >= cfg.stale_s
        ) or (fixed_at is not None and now - fixed_at < 2 * cfg.audit_s)
        if is_stale:
            stale.append(pair)
        pairs[pair] = {
            "state": replica.state.value,
            "seq": local.seq if local else None,
            "epoch": local.epoch if local else None,
            "age_s": round(now - replica.last_update, 3),
            "subscribers": len(hub.subscribers.get(pair, ())),
            "gaps": replica.gaps,
            "reloads": replica.reloads,
            "stale": is_stale,
        }
    link = hub.link
    ready = link.up and not stale and not hub.shutting_down
    reasons = []
    if not link.up:
        down = link.down_since
        reasons.append("redis link down" + (f" for {now - down:.1f}s" if down is not None else ""))
    if stale:
        reasons.append(f"{len(stale)} stale pair(s)")
    if hub.shutting_down:
        reasons.append("shutting down")
    body: dict[str, object] = {
        "status": "ok" if ready else "degraded",
        "live": True,
        "ready": ready,
        "reasons": reasons,
        "redis": "up" if link.up else "down",
        "stale_pairs": stale,
        "connections": len(hub.sessions),
        "stale_clients": sum(1 for s in hub.sessions if s.lagging),
        "pairs": pairs,
        "counters": hub.counters.as_dict(),
    }
    return (200 if ready else 503), body
