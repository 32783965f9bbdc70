"""Settings of the Binance dialect: read once at start-up from the environment, failing fast by name.

Binance's own paths (``/ws``, ``/stream``, ``/api/v3/...``) would collide with bookcast's
``/ws`` on a shared port, so there the dialect lives under a prefix (``/binance`` by
default); on a port of its own it may use Binance's paths exactly (empty prefix).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mdcore.settings import SettingError, env_float, env_int

PING_INTERVAL_S = 20.0  # "The WebSocket server will send a ping frame every 20 seconds."
PING_TIMEOUT_S = 60.0  # "...does not receive a pong frame back ... within a minute ... disconnected."
_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)*")


@dataclass(frozen=True, slots=True)
class BinanceConfig:
    enabled: bool = True
    prefix: str = "/binance"  # URL prefix of every Binance path ("" only on a port of its own)
    port: int | None = None  # None: the gateway's port; else a listener of its own
    weight_limit: int = 6000  # REQUEST_WEIGHT per IP and minute, as Binance's
    max_streams: int = 1024  # streams per connection
    msg_rate: float = 5.0  # incoming messages per second per connection
    max_message_bytes: int = 64 << 10  # a SUBSCRIBE of 1024 names needs about 30 KiB
    # slow clients, as native ones (the gateway passes its BOOKCAST_GATEWAY_* settings)
    high_water_bytes: int = 1 << 20  # a connection's unsent bytes above this: stale, its events skipped
    low_water_bytes: int = 64 << 10  # … below this again: healed
    slow_close_s: float = 10.0  # stale this long: closed with 4008
    ping_interval_s: float = PING_INTERVAL_S
    ping_timeout_s: float = PING_TIMEOUT_S

    def __post_init__(self) -> None:
        if not _PREFIX.fullmatch(self.prefix):
            raise SettingError(f"BOOKCAST_BINANCE_PREFIX={self.prefix!r} must be empty or like /binance")
        if self.enabled and not self.prefix and self.port is None:
            raise SettingError(
                "BOOKCAST_BINANCE_PREFIX may be empty only with BOOKCAST_BINANCE_PORT set: "
                "on the gateway's port Binance's /ws would shadow bookcast's /ws"
            )


def _env_bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingError(f"{key}={raw!r} is not a boolean (1/0, true/false, on/off)")


def load_binance_config(env: Mapping[str, str] = os.environ) -> BinanceConfig:
    raw_port = env.get("BOOKCAST_BINANCE_PORT", "").strip()
    port = env_int(env, "BOOKCAST_BINANCE_PORT", 0, 0, 65535) if raw_port else None
    return BinanceConfig(
        enabled=_env_bool(env, "BOOKCAST_BINANCE", True),
        prefix=env.get("BOOKCAST_BINANCE_PREFIX", "/binance").strip().rstrip("/"),
        port=port,
        weight_limit=env_int(env, "BOOKCAST_BINANCE_WEIGHT_LIMIT", 6000, 1, 10**9),
        max_streams=env_int(env, "BOOKCAST_BINANCE_MAX_STREAMS", 1024, 1, 100_000),
        msg_rate=env_float(env, "BOOKCAST_BINANCE_MSG_RATE", 5.0, 0.1, 10_000.0),
    )
