"""Gateway settings: read once at start-up from the environment and flags."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass

from mdcore.settings import SettingError, check_range, env_int, env_str, parse_pairs


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    redis_url: str
    host: str = "127.0.0.1"
    port: int = 8765
    redis_prefix: str = "bookcast"
    pairs: tuple[str, ...] = ()  # offered even before md_service has published them
    max_frame_bytes: int = 4096
    linger_s: float = 5.0  # keep a pair's Redis subscription this long after its last client
    high_water_bytes: int = 1 << 20  # a client's write buffer above this stops its deltas
    low_water_bytes: int = 64 << 10  # …and below this it gets a fresh snapshot
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (BOOKCAST_GATEWAY_HOST)")
    parser.add_argument("--port", type=int, help="listen port (BOOKCAST_GATEWAY_PORT)")
    parser.add_argument("--redis-url", help="Redis URL (REDIS_URL)")


def load_config(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> GatewayConfig:
    try:
        redis_url = args.redis_url or env_str(env, "REDIS_URL")
    except SettingError as exc:
        raise SettingError(f"{exc} (`bookcast up` starts embedded servers and sets it for you)") from None
    port = env_int(env, "BOOKCAST_GATEWAY_PORT", 8765, 0, 65535)
    if args.port is not None:
        port = check_range("--port", args.port, 0, 65535)
    return GatewayConfig(
        redis_url=redis_url,
        host=args.host or env_str(env, "BOOKCAST_GATEWAY_HOST", "127.0.0.1"),
        port=port,
        redis_prefix=env_str(env, "BOOKCAST_REDIS_PREFIX", "bookcast"),
        pairs=parse_pairs("BOOKCAST_PAIRS", env.get("BOOKCAST_PAIRS")),
    )
