"""Gateway settings: read once at start-up from the environment and flags (docs/gateway.md)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass

from mdcore.partitioning import DEFAULT_PARTITIONS
from mdcore.settings import (
    SettingError,
    check_range,
    cluster_seeds,
    cluster_url,
    env_float,
    env_int,
    env_str,
    parse_pairs,
)

KIB = 1024


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    redis_url: str
    host: str = "127.0.0.1"
    port: int = 8765
    workers: int = 1
    reuse_port: bool = False  # set for the workers of `--workers N`
    redis_prefix: str = "bookcast"
    redis_cluster: tuple[str, ...] = ()  # seed nodes host:port of a Redis Cluster (REDIS_CLUSTER)
    partitions: int = DEFAULT_PARTITIONS  # the topic's partition count: picks each pair's hash slot
    pairs: tuple[str, ...] = ()  # offered even before md_service has published them
    # limits
    max_frame_bytes: int = 4 * KIB
    max_pairs: int = 100  # subscriptions per connection
    op_rate: float = 20.0  # inbound ops per second per connection …
    op_burst: int = 40  # … with bursts of this many
    max_connections: int = 20_000  # per process
    max_connections_per_ip: int = 1_000  # 0 = no limit
    tokens: frozenset[str] = frozenset()  # empty: no authentication
    origins: frozenset[str] = frozenset()  # empty: any Origin
    # slow clients
    high_water_bytes: int = 1024 * KIB  # a client's write buffer above this makes it stale …
    low_water_bytes: int = 64 * KIB  # … and below this it is healed with snapshots
    slow_close_s: float = 10.0  # stale this long: closed with 4008
    send_buffer_bytes: int = 0  # SO_SNDBUF of client sockets; 0 = the OS default
    # frames: a window's burst of deltas leaves as one frame per client (gateway.core.frame_clock)
    frame_quiet_ms: float = 10.0  # the burst is over when no delta came for this long …
    frame_hold_ms: float = 40.0  # … or this long after its first delta (both 0: every loop turn)
    # overload (gateway.core.overload): refuse handshakes while the event loop runs this late …
    overload_enter_ms: float = 150.0  # (0: never refuse for lag)
    overload_leave_ms: float = 50.0  # … until it has been at most this late …
    overload_hold_s: float = 2.0  # … for this long
    overload_min_busy: float = 0.5  # … and only while this process uses at least this share of a core
    # heartbeats and timers
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    linger_s: float = 30.0  # keep a pair's replica this long after its last client (churn reloads nothing)
    recent_deltas: int = 200  # per pair, kept in memory for `since` recovery
    recovery_wait_s: float = 2.0  # how long a `since` subscribe waits for a replica to load
    shutdown_s: float = 5.0  # graceful shutdown bound
    redis_ping_s: float = 1.0
    redis_dead_s: float = 3.0  # nothing back from Redis this long: the link is dead
    audit_s: float = 2.0  # compare replicas with md_service's state this often
    stale_s: float = 5.0  # a replica not live this long counts as stale in /health
    backlog: int = 2048
    # load on Redis that clients can cause (docs/gateway.md, "Limits and hostile input")
    rest_rate: float = 20.0  # REST requests per second per client address (0: no limit) …
    rest_burst: int = 40  # … with bursts of this many
    snapshot_cache_s: float = 0.5  # a cold /snapshot read from Redis is reused this long (0: not kept)
    redis_max_connections: int = 32  # the Redis connection pool's bound (Pub/Sub is apart) …
    redis_pool_wait_s: float = 1.0  # … and how long a read waits for a free connection
    max_history_read: int = 1000  # deltas one history read may fetch; further behind: a snapshot
    # pipeline freshness in /health (gateway.core.freshness)
    overdue_factor: float = 10.0  # a pair is overdue after this many of its usual gaps without a delta …
    overdue_min_s: float = 3.0  # … and never sooner than this
    md_heartbeat_s: float = 1.0  # how often md_service's status on the bus is read (0: not at all)
    unready_stale_fraction: float = 0.5  # more than this share of wanted pairs stale here: 503
    gc_freeze_every: int = 200  # new connections between freezes of the live objects; 0 = default GC
    gc_collect_after: int = 2000  # closed connections before a full collection


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (BOOKCAST_GATEWAY_HOST)")
    parser.add_argument("--port", type=int, help="listen port (BOOKCAST_GATEWAY_PORT)")
    parser.add_argument("--redis-url", help="Redis URL (REDIS_URL)")
    parser.add_argument(
        "--workers", type=int, help="processes sharing the port (BOOKCAST_GATEWAY_WORKERS; default: cores)"
    )
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set for workers


def _csv(env: Mapping[str, str], key: str) -> frozenset[str]:
    return frozenset(v.strip() for v in env.get(key, "").split(",") if v.strip())


def load_config(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> GatewayConfig:
    try:
        redis_url = args.redis_url or env_str(env, "REDIS_URL", cluster_url(env))
    except SettingError as exc:
        raise SettingError(f"{exc} (`bookcast up` starts embedded servers and sets it for you)") from None
    port = env_int(env, "BOOKCAST_GATEWAY_PORT", 8765, 0, 65535)
    if args.port is not None:
        port = check_range("--port", args.port, 0, 65535)
    workers = env_int(env, "BOOKCAST_GATEWAY_WORKERS", default_workers(), 1, 256)
    if args.workers is not None:
        workers = check_range("--workers", args.workers, 1, 256)
    high = env_int(env, "BOOKCAST_GATEWAY_HIGH_WATER", 1024 * KIB, 4 * KIB, 1 << 30)
    low = env_int(env, "BOOKCAST_GATEWAY_LOW_WATER", min(64 * KIB, high // 2), 0, 1 << 30)
    if low >= high:
        raise SettingError(
            f"BOOKCAST_GATEWAY_LOW_WATER={low} must be below BOOKCAST_GATEWAY_HIGH_WATER={high}"
        )
    ping_dead = env_float(env, "BOOKCAST_GATEWAY_REDIS_DEAD_S", 3.0, 0.2, 600)
    overload_enter = env_float(env, "BOOKCAST_GATEWAY_OVERLOAD_ENTER_MS", 150.0, 0.0, 60_000)
    overload_leave = env_float(
        env, "BOOKCAST_GATEWAY_OVERLOAD_LEAVE_MS", min(50.0, overload_enter), 0.0, 60_000
    )
    if overload_leave > overload_enter:
        raise SettingError(
            f"BOOKCAST_GATEWAY_OVERLOAD_LEAVE_MS={overload_leave:g} must not exceed "
            f"BOOKCAST_GATEWAY_OVERLOAD_ENTER_MS={overload_enter:g}"
        )
    return GatewayConfig(
        redis_url=redis_url,
        host=args.host or env_str(env, "BOOKCAST_GATEWAY_HOST", "127.0.0.1"),
        port=port,
        workers=workers,
        reuse_port=bool(getattr(args, "reuse_port", False)),
        redis_prefix=env_str(env, "BOOKCAST_REDIS_PREFIX", "bookcast"),
        redis_cluster=cluster_seeds(env),
        partitions=env_int(env, "BOOKCAST_PARTITIONS", DEFAULT_PARTITIONS, 1, 10_000),
        pairs=parse_pairs("BOOKCAST_PAIRS", env.get("BOOKCAST_PAIRS")),
        max_frame_bytes=env_int(env, "BOOKCAST_GATEWAY_MAX_FRAME", 4 * KIB, 256, 1 << 20),
        max_pairs=env_int(env, "BOOKCAST_GATEWAY_MAX_PAIRS", 100, 1, 100_000),
        op_rate=env_float(env, "BOOKCAST_GATEWAY_OP_RATE", 20.0, 0.1, 1e6),
        op_burst=env_int(env, "BOOKCAST_GATEWAY_OP_BURST", 40, 1, 1_000_000),
        max_connections=env_int(env, "BOOKCAST_GATEWAY_MAX_CONNECTIONS", 20_000, 1, 10_000_000),
        max_connections_per_ip=env_int(env, "BOOKCAST_GATEWAY_MAX_CONNECTIONS_PER_IP", 1_000, 0, 10_000_000),
        tokens=_csv(env, "BOOKCAST_GATEWAY_TOKENS"),
        origins=_csv(env, "BOOKCAST_GATEWAY_ORIGINS"),
        high_water_bytes=high,
        low_water_bytes=low,
        slow_close_s=env_float(env, "BOOKCAST_GATEWAY_SLOW_CLOSE_S", 10.0, 0.1, 3600),
        send_buffer_bytes=env_int(env, "BOOKCAST_GATEWAY_SEND_BUFFER", 0, 0, 1 << 30),
        ping_interval_s=env_float(env, "BOOKCAST_GATEWAY_PING_INTERVAL_S", 20.0, 0.1, 3600),
        ping_timeout_s=env_float(env, "BOOKCAST_GATEWAY_PING_TIMEOUT_S", 20.0, 0.1, 3600),
        frame_quiet_ms=env_float(env, "BOOKCAST_GATEWAY_FRAME_QUIET_MS", 10.0, 0.0, 1000),
        frame_hold_ms=env_float(env, "BOOKCAST_GATEWAY_FRAME_HOLD_MS", 40.0, 0.0, 1000),
        overload_enter_ms=overload_enter,
        overload_leave_ms=overload_leave,
        overload_hold_s=env_float(env, "BOOKCAST_GATEWAY_OVERLOAD_HOLD_S", 2.0, 0.0, 600),
        overload_min_busy=env_float(env, "BOOKCAST_GATEWAY_OVERLOAD_MIN_BUSY", 0.5, 0.0, 64.0),
        linger_s=env_float(env, "BOOKCAST_GATEWAY_LINGER_S", 30.0, 0.0, 3600),
        recent_deltas=env_int(env, "BOOKCAST_GATEWAY_RECENT", 200, 0, 1_000_000),
        recovery_wait_s=env_float(env, "BOOKCAST_GATEWAY_RECOVERY_WAIT_S", 2.0, 0.0, 60),
        shutdown_s=env_float(env, "BOOKCAST_GATEWAY_SHUTDOWN_S", 5.0, 0.1, 600),
        redis_ping_s=env_float(env, "BOOKCAST_GATEWAY_REDIS_PING_S", 1.0, 0.05, 60),
        redis_dead_s=ping_dead,
        audit_s=env_float(env, "BOOKCAST_GATEWAY_AUDIT_S", 2.0, 0.1, 3600),
        stale_s=env_float(env, "BOOKCAST_GATEWAY_STALE_S", 5.0, 0.1, 3600),
        gc_freeze_every=env_int(env, "BOOKCAST_GATEWAY_GC_FREEZE_EVERY", 200, 0, 1_000_000),
        gc_collect_after=env_int(env, "BOOKCAST_GATEWAY_GC_COLLECT_AFTER", 2000, 1, 10_000_000),
        rest_rate=env_float(env, "BOOKCAST_GATEWAY_REST_RATE", 20.0, 0.0, 1e6),
        rest_burst=env_int(env, "BOOKCAST_GATEWAY_REST_BURST", 40, 1, 1_000_000),
        snapshot_cache_s=env_float(env, "BOOKCAST_GATEWAY_SNAPSHOT_CACHE_S", 0.5, 0.0, 60),
        redis_max_connections=env_int(env, "BOOKCAST_GATEWAY_REDIS_MAX_CONNECTIONS", 32, 2, 10_000),
        redis_pool_wait_s=env_float(env, "BOOKCAST_GATEWAY_REDIS_POOL_WAIT_S", 1.0, 0.0, 60),
        max_history_read=env_int(env, "BOOKCAST_GATEWAY_MAX_HISTORY_READ", 1000, 1, 1_000_000),
        overdue_factor=env_float(env, "BOOKCAST_GATEWAY_OVERDUE_FACTOR", 10.0, 1.0, 1e6),
        overdue_min_s=env_float(env, "BOOKCAST_GATEWAY_OVERDUE_MIN_S", 3.0, 0.1, 86_400),
        md_heartbeat_s=env_float(env, "BOOKCAST_GATEWAY_MD_HEARTBEAT_S", 1.0, 0.0, 60),
        unready_stale_fraction=env_float(env, "BOOKCAST_GATEWAY_UNREADY_STALE_FRACTION", 0.5, 0.0, 1.0),
    )
