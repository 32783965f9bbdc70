"""Typed reading of settings from an environment mapping, failing fast with the key's name.

Each tier's ``config.py`` builds a frozen dataclass from ``os.environ`` and its command-line
flags with these helpers, once at start-up. They take the mapping as an argument, so
tests pass a plain dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeVar

from mdcore.errors import BookcastError, UnknownPairError
from mdcore.instruments import NAMED_PAIRS, instrument

N = TypeVar("N", int, float)


class SettingError(BookcastError, ValueError):
    """A setting is missing or malformed; the message names the key and what is allowed."""


def env_str(env: Mapping[str, str], key: str, default: str | None = None) -> str:
    value = env.get(key, "").strip()
    if value:
        return value
    if default is None:
        raise SettingError(f"{key} is not set")
    return default


def env_int(
    env: Mapping[str, str], key: str, default: int, lo: int | None = None, hi: int | None = None
) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(f"{key}={raw!r} is not an integer") from None
    return check_range(key, value, lo, hi)


def env_float(
    env: Mapping[str, str], key: str, default: float, lo: float | None = None, hi: float | None = None
) -> float:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{key}={raw!r} is not a number") from None
    if not math.isfinite(value):  # "nan" would pass every range check
        raise SettingError(f"{key}={raw!r} is not a finite number")
    return check_range(key, value, lo, hi)


def check_range(key: str, value: N, lo: N | None, hi: N | None) -> N:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise SettingError(f"{key}={value} is out of range [{lo}, {hi}]")
    return value


def parse_pairs(key: str, raw: str | None) -> tuple[str, ...]:
    """A comma-separated pair list (default: the eight named pairs), each checked against the catalogue."""
    if raw is None or not raw.strip():
        return NAMED_PAIRS
    pairs = tuple(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
    for pair in pairs:
        try:
            instrument(pair)
        except UnknownPairError:
            known = ", ".join(NAMED_PAIRS)
            raise SettingError(f"{key}: unknown pair {pair!r} (known: {known}, SYN000-USD…)") from None
    if not pairs:
        raise SettingError(f"{key} names no pair")
    return pairs


def host_port(node: str, key: str = "a node") -> tuple[str, int]:
    """``host:port`` split (the one parser of a seed node's address)."""
    host, sep, port = node.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingError(f"{key}: {node!r} is not host:port")
    return host, int(port)


def cluster_seeds(env: Mapping[str, str], key: str = "REDIS_CLUSTER") -> tuple[str, ...]:
    """Seed nodes of a Redis Cluster, ``host:port,host:port``; () when the setting is empty."""
    seeds = [node for node in (raw.strip() for raw in env.get(key, "").split(",")) if node]
    for node in seeds:
        host_port(node, key)
    return tuple(seeds)


def cluster_url(env: Mapping[str, str], key: str = "REDIS_CLUSTER") -> str | None:
    """``redis://`` URL of the first seed node (the default REDIS_URL when only seeds are given)."""
    seeds = cluster_seeds(env, key)
    return f"redis://{seeds[0]}" if seeds else None
