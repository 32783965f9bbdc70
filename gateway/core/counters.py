"""Every count the gateway keeps, in one place, so a metrics exporter can publish them all.

``Counters`` is a ``collections.Counter`` (cheap ``+=`` on the hot path) whose names must be
listed in :data:`HELP`; ``tests/unit/gateway`` checks that every name used in the package
is. Close codes are counted as ``closes_<code>``, error answers as ``errors_<code>``.
"""

from __future__ import annotations

from collections import Counter

HELP: dict[str, str] = {
    # connections
    "connections_opened": "WebSocket connections that completed the handshake",
    "connections_closed": "WebSocket connections that ended, for any reason",
    "handshakes_refused": "WebSocket handshakes answered with an HTTP error (any reason below)",
    "refused_unauthorized": "handshakes without a valid token (401)",
    "refused_origin": "handshakes from an Origin not in the allowlist (403)",
    "refused_process_limit": "handshakes over the per-process connection limit (503)",
    "refused_ip_limit": "handshakes over the per-IP connection limit (429)",
    "refused_shutting_down": "handshakes during a graceful shutdown (503)",
    "handshakes_abandoned": "upgrade requests whose client had gone by the time they were checked",
    "refused_overloaded": "handshakes refused while the event loop ran late (503 with Retry-After)",
    "closed_rate_limited": "connections closed with 1008 for sending too fast",
    "closed_slow": "connections closed with 4008 for staying over the high-water mark too long",
    "closed_shutdown": "connections closed with 1001 by a graceful shutdown",
    # requests and answers
    "ops_received": "client ops received (text frames)",
    "binary_frames": "binary frames received (answered with bad_request)",
    "subscribes": "subscribe ops accepted",
    "unsubscribes": "unsubscribe ops accepted",
    "resyncs": "resync ops accepted",
    "pings": "app-level pings answered",
    "recoveries": "pairs recovered from `since` without a snapshot",
    "recovery_misses": "pairs whose `since` could not be recovered (a snapshot was sent)",
    "recovery_history_reads": "recoveries that had to read md_service's history in Redis",
    "recovery_snapshot_cheaper": "`since` answered with a snapshot: the replay from history would cost more",
    "answers_cut": "subscribe answers cut short because the client went stale (the rest owed as snapshots)",
    "http_requests": "HTTP requests other than WebSocket upgrades",
    # fan-out
    "deltas_in": "deltas applied to replicas (each fanned out once)",
    "flushes": "fan-out rounds (one per event-loop turn with new deltas)",
    "frames_built": "distinct frames encoded (one per distinct subscription set and round)",
    "frames_out": "frames written to clients by the fan-out",
    "bytes_out": "bytes written to clients by the fan-out (frame headers included)",
    "deltas_out": "pair-deltas delivered to clients (a packed frame counts each delta)",
    "write_errors": "writes to a transport that failed (the client is going away)",
    "snapshots_sent": "snapshot messages sent (subscribe, resync, reset, conflation)",
    "replayed_deltas": "deltas replayed to clients by `since` recovery",
    # slow clients
    "slow_paused": "clients whose write buffer passed the high-water mark (marked stale)",
    "slow_conflations": "stale clients that drained and were healed by snapshots",
    "slow_conflation_snapshots": "snapshots sent to heal drained stale clients",
    # Redis side
    "redis_messages": "Pub/Sub messages received for a wanted pair",
    "redis_bad_messages": "Pub/Sub messages that were not a decodable delta",
    "redis_connects": "Pub/Sub connections established",
    "redis_disconnects": "Pub/Sub connections lost (including ones found dead by pings)",
    "redis_dead_links": "Pub/Sub connections declared dead because nothing came back in time",
    "redis_watch_late": "link checks skipped because this process's event loop was starved",
    "channels_dropped_by_server": "sharded subscriptions a Redis Cluster node ended itself (its slot moved)",
    "redis_pairs_moved": "pairs re-subscribed on another cluster node (failover, resharding) and caught up",
    "redis_read_errors": "failed reads of books, history or state",
    "replica_gaps": "seq gaps seen on Pub/Sub (filled from history or by a reload)",
    "replica_reloads": "full book loads of a replica",
    "replica_history_fills": "gaps filled from md_service's history",
    "replica_integrity_errors": "replica books that failed their checksum (reloaded)",
    "audit_behind": "replicas found behind md_service's state by the audit (caught up)",
    # the garbage collector (gateway.gc_policy)
    "gc_freezes": "times the objects of live connections were frozen out of collections",
    "gc_full_collections": "full collections run after connection churn",
    "gc_full_ms": "milliseconds spent in those full collections",
    "channels_subscribed": "Redis channel subscriptions made",
    "channels_unsubscribed": "Redis channel subscriptions dropped after the linger",
}


class Counters(Counter[str]):
    """Monotonic counts by name; names are documented in :data:`HELP`."""

    def count_close(self, code: int | None) -> None:
        self["connections_closed"] += 1
        self[f"closes_{code if code is not None else 'none'}"] += 1

    def count_error(self, code: str) -> None:
        self[f"errors_{code}"] += 1

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.items()))


def is_documented(name: str) -> bool:
    """Whether a counter name is in :data:`HELP` or one of the per-code families."""
    return name in HELP or name.startswith(("closes_", "errors_"))
