"""md_service settings: read once at start-up from the environment and flags."""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from mdcore.partitioning import DEFAULT_PARTITIONS
from mdcore.settings import (
    SettingError,
    check_range,
    cluster_seeds,
    cluster_url,
    env_float,
    env_int,
    env_str,
)

# An exchange loses a few messages, not a million: a jump beyond this is a garbled xseq,
# which applied would make every later genuine event look old (docs/md_service.md).
MAX_XSEQ_JUMP = 1_000_000
_NO_SERVERS = " (`bookcast up` starts embedded servers and sets it for you)"


@dataclass(frozen=True, slots=True)
class MdConfig:
    kafka_bootstrap: str
    redis_url: str
    redis_cluster: tuple[str, ...] = ()  # seed nodes host:port of a Redis Cluster (REDIS_CLUSTER)
    topic: str = "bookcast.deltas"
    group_id: str = "bookcast-md"
    window_ms: int = 100
    window_slots: int = 8  # partitions close their windows in this many turns per window ...
    slot_span_ms: int = 0  # ... all within this long after the window's end (one burst for gateways)
    snapshot_every: int = 50  # write a full snapshot to Redis every N seqs of a pair (5 s at 100 ms)
    history: int = 600  # deltas kept per pair in Redis (one minute at 100 ms)
    redis_prefix: str = "bookcast"
    max_batch: int = 500  # Kafka messages per consume() call: small enough to close windows on time
    fetch_wait_ms: int = 10  # librdkafka's fetch.wait.max.ms
    session_timeout_ms: int = 6_000
    max_poll_interval_ms: int = 10_000
    check_interval_ms: int = 1_000  # every pair's stored state is checked this often, quiet or not
    dead_letter_topic: str = ""  # "" = malformed messages are only counted and logged
    redis_timeout_ms: int = 5_000  # a Redis call unanswered this long counts as failed (and is retried)
    instance: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    status_interval_s: float = 10.0
    max_xseq_jump: int = MAX_XSEQ_JUMP  # a pair's xseq may skip at most this many; beyond: a poison event
    state_dir: str = ""  # where write marks live (md_service.write_marks); "" = none kept
    standby: bool = False  # follow partitions warm and take them over when their writer is gone
    partitions: tuple[int, ...] = ()  # a standby's partitions; () = every partition of the topic
    topic_partitions: int = DEFAULT_PARTITIONS  # the topic's partition count (BOOKCAST_PARTITIONS)
    heartbeat_ms: int = 100  # a writer's heartbeat in Redis, per partition it writes
    takeover_ms: int = 500  # a follower takes a partition over whose writer has not beaten this long
    adopt_ms: int = 1_500  # a group member reads and writes such a partition cold (0: never)
    group_instance_id: str = ""  # static group membership (group.instance.id); "" = dynamic

    @property
    def heartbeat_interval_ms(self) -> int:
        return max(100, min(self.session_timeout_ms // 4, 3_000))


def parse_partitions(key: str, raw: str) -> tuple[int, ...]:
    """``all`` (or empty): every partition; else a list like ``0,2-5``."""
    raw = raw.strip()
    if raw in ("", "all"):
        return ()
    out: set[int] = set()
    try:
        for part in raw.split(","):
            lo, _, hi = part.strip().partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise SettingError(f"{key}={raw!r} is not a list of partitions like 0,2-5") from None
    if not out or min(out) < 0:
        raise SettingError(f"{key}={raw!r} names no partition (or a negative one)")
    return tuple(sorted(out))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (KAFKA_BOOTSTRAP)")
    parser.add_argument("--redis-url", help="Redis URL (REDIS_URL)")
    parser.add_argument("--topic", help="Kafka topic of exchange events (BOOKCAST_TOPIC)")
    parser.add_argument("--group", help="Kafka consumer group (BOOKCAST_MD_GROUP)")
    parser.add_argument("--window-ms", type=int, help="coalescing window, 50..100 (BOOKCAST_WINDOW_MS)")
    parser.add_argument("--history", type=int, help="deltas kept per pair (BOOKCAST_HISTORY)")
    parser.add_argument(
        "--standby", action="store_true", default=None,
        help="run as a hot standby: follow the partitions, take over when their writer is gone "
        "(BOOKCAST_MD_ROLE=standby)",
    )  # fmt: skip


def state_dir(env: Mapping[str, str]) -> str:
    """``BOOKCAST_MD_STATE_DIR`` ("off": none), checked now if set; else the user's state directory."""
    raw = env.get("BOOKCAST_MD_STATE_DIR", "").strip()
    if raw == "off":
        return ""
    if not raw:
        base = env.get("XDG_STATE_HOME", "").strip() or os.path.expanduser("~/.local/state")
        return os.path.join(base, "bookcast", "md")
    try:
        os.makedirs(raw, exist_ok=True)
    except OSError as exc:
        raise SettingError(f"BOOKCAST_MD_STATE_DIR={raw!r} is not a usable directory: {exc}") from None
    if not os.access(raw, os.W_OK):
        raise SettingError(f"BOOKCAST_MD_STATE_DIR={raw!r} is not writable")
    return raw


def load_config(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> MdConfig:
    """Flags override environment; a missing or bad value raises :class:`SettingError`."""
    try:
        kafka = args.bootstrap or env_str(env, "KAFKA_BOOTSTRAP")
    except SettingError as exc:
        raise SettingError(f"{exc}{_NO_SERVERS}") from None
    try:
        redis_url = args.redis_url or env_str(env, "REDIS_URL", cluster_url(env))
    except SettingError as exc:
        raise SettingError(f"{exc}{_NO_SERVERS}") from None
    window_ms = env_int(env, "BOOKCAST_WINDOW_MS", 100, 50, 100)
    if args.window_ms is not None:
        window_ms = check_range("--window-ms", args.window_ms, 50, 100)
    history = env_int(env, "BOOKCAST_HISTORY", 600, 20, 1_000_000)
    if args.history is not None:
        history = check_range("--history", args.history, 20, 1_000_000)
    session_ms = env_int(env, "BOOKCAST_MD_SESSION_TIMEOUT_MS", 6_000, 1_000, 300_000)
    poll_ms = env_int(env, "BOOKCAST_MD_MAX_POLL_INTERVAL_MS", max(10_000, session_ms), 1_000, 3_600_000)
    if poll_ms < session_ms:
        raise SettingError(
            f"BOOKCAST_MD_MAX_POLL_INTERVAL_MS={poll_ms} must be at least "
            f"BOOKCAST_MD_SESSION_TIMEOUT_MS={session_ms}"
        )
    instance = env_str(env, "BOOKCAST_MD_INSTANCE", f"{socket.gethostname()}-{os.getpid()}")
    role = env_str(env, "BOOKCAST_MD_ROLE", "active")
    if role not in ("active", "standby"):
        raise SettingError(f"BOOKCAST_MD_ROLE={role!r} must be active or standby")
    heartbeat_ms = env_int(env, "BOOKCAST_MD_HEARTBEAT_MS", 100, 20, 10_000)
    takeover_ms = env_int(env, "BOOKCAST_MD_TAKEOVER_MS", max(500, 3 * heartbeat_ms), 1, 600_000)
    if takeover_ms < 2 * heartbeat_ms:
        raise SettingError(
            f"BOOKCAST_MD_TAKEOVER_MS={takeover_ms} must be at least twice "
            f"BOOKCAST_MD_HEARTBEAT_MS={heartbeat_ms} (a single late beat must not look like death)"
        )
    adopt_ms = env_int(env, "BOOKCAST_MD_ADOPT_MS", max(1_500, takeover_ms), 0, 600_000)
    if 0 < adopt_ms < takeover_ms:
        raise SettingError(
            f"BOOKCAST_MD_ADOPT_MS={adopt_ms} must be 0 or at least BOOKCAST_MD_TAKEOVER_MS={takeover_ms} "
            "(a warm standby takes over before a cold adopter)"
        )
    return MdConfig(
        kafka_bootstrap=kafka,
        redis_url=redis_url,
        redis_cluster=cluster_seeds(env),
        topic=args.topic or env_str(env, "BOOKCAST_TOPIC", "bookcast.deltas"),
        group_id=args.group or env_str(env, "BOOKCAST_MD_GROUP", "bookcast-md"),
        window_ms=window_ms,
        snapshot_every=env_int(env, "BOOKCAST_MD_SNAPSHOT_EVERY", min(50, history // 2), 1, history // 2),
        history=history,
        redis_prefix=env_str(env, "BOOKCAST_REDIS_PREFIX", "bookcast"),
        max_batch=env_int(env, "BOOKCAST_MD_MAX_BATCH", 500, 1, 100_000),
        fetch_wait_ms=env_int(env, "BOOKCAST_MD_FETCH_WAIT_MS", 10, 0, 10_000),
        window_slots=env_int(env, "BOOKCAST_MD_WINDOW_SLOTS", 8, 1, 20),
        slot_span_ms=min(window_ms, env_int(env, "BOOKCAST_MD_SLOT_SPAN_MS", 0, 0, 100)),
        session_timeout_ms=session_ms,
        max_poll_interval_ms=poll_ms,
        check_interval_ms=env_int(env, "BOOKCAST_MD_CHECK_MS", 1_000, 100, 3_600_000),
        dead_letter_topic=env.get("BOOKCAST_MD_DEAD_LETTER_TOPIC", "").strip(),
        redis_timeout_ms=env_int(env, "BOOKCAST_MD_REDIS_TIMEOUT_MS", 5_000, 100, 600_000),
        instance=instance,
        status_interval_s=env_float(env, "BOOKCAST_MD_STATUS_INTERVAL_S", 10.0, 0.1, 3600.0),
        max_xseq_jump=env_int(env, "BOOKCAST_MD_MAX_XSEQ_JUMP", MAX_XSEQ_JUMP, 1, 2**62),
        state_dir=state_dir(env),
        standby=bool(args.standby) or role == "standby",
        partitions=parse_partitions("BOOKCAST_MD_PARTITIONS", env.get("BOOKCAST_MD_PARTITIONS", "")),
        topic_partitions=env_int(env, "BOOKCAST_PARTITIONS", DEFAULT_PARTITIONS, 1, 10_000),
        heartbeat_ms=heartbeat_ms,
        takeover_ms=takeover_ms,
        adopt_ms=adopt_ms,
        group_instance_id=env.get("BOOKCAST_MD_GROUP_INSTANCE_ID", "").strip(),
    )
