"""Settings of the clients tier: the library's tuning knobs and the ``watch`` command's config.

Both are frozen dataclasses built once. ``WatchConfig`` reads ``BOOKCAST_URL`` and
``BOOKCAST_LOG_LEVEL`` from the environment (flags override), failing fast with the
setting's name.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field

from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from clients.backoff import REFUSAL_BACKOFF, Backoff
from mdcore.errors import UnknownPairError
from mdcore.instruments import instrument
from mdcore.settings import SettingError, env_str

DEFAULT_URL = "ws://127.0.0.1:8765/ws"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How a :class:`~clients.BookClient` connects, reconnects and verifies."""

    backoff: Backoff = field(default_factory=Backoff)
    # Raise from ``async with`` / ``start()`` if the first connection fails, instead of retrying
    # in the background: a wrong URL is a configuration error worth seeing at once.
    fail_fast: bool = True
    open_timeout: float = 5.0  # seconds for TCP connect + WebSocket handshake
    close_timeout: float = 2.0
    ping_interval: float | None = 20.0  # WebSocket keepalive; None disables it
    ping_timeout: float | None = 20.0
    max_frame_size: int = 16 * 2**20  # an array frame of many pairs' snapshots can be large
    # A connection that lived this long resets the backoff, so one blip costs one short delay.
    stable_after: float = 10.0
    resync_retry: float = 5.0  # ask again if a requested snapshot has not come after this long
    verify_checksums: bool = True
    update_buffer: int = 10_000  # updates kept per UpdateStream before the oldest are dropped
    # Ops sent per second, with bursts of op_burst: half the gateway's default limit (20/s,
    # bursts of 40; passing it closes the connection with 1008), leaving room for jitter.
    op_rate: float = 10.0
    op_burst: int = 20
    # A pair the gateway refused to subscribe (unknown_pair, too_many_pairs) is asked again
    # after these delays, growing with each refusal in a row.
    refusal_backoff: Backoff = REFUSAL_BACKOFF

    def __post_init__(self) -> None:
        for name in ("open_timeout", "close_timeout", "stable_after", "resync_retry", "op_rate"):
            if not getattr(self, name) > 0:  # also refuses NaN, which compares False with anything
                raise ValueError(f"ClientOptions.{name} must be positive")
        if self.update_buffer < 1 or self.max_frame_size < 1 or self.op_burst < 1:
            raise ValueError("ClientOptions.update_buffer, max_frame_size and op_burst must be at least 1")


def check_url(key: str, url: str) -> str:
    """``url`` if it is a ws:// or wss:// URL, else a :class:`SettingError` naming ``key``."""
    try:
        parse_uri(url)
    except InvalidURI:
        raise SettingError(f"{key}={url!r} is not a ws:// or wss:// URL") from None
    return url


@dataclass(frozen=True, slots=True)
class WatchConfig:
    """``bookcast watch PAIR``: what to show, from where, for how long."""

    pair: str
    url: str = DEFAULT_URL
    depth: int = 5
    frames: int | None = None  # stop after this many frames (None: until Ctrl-C)
    interval: float = 0.1  # at most one redraw per interval
    log_level: str = "INFO"

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Mapping[str, str]) -> WatchConfig:
        try:
            instrument(args.pair)
        except UnknownPairError:
            raise SettingError(f"PAIR: unknown pair {args.pair!r}") from None
        if args.url:
            url = check_url("--url", args.url)
        else:
            url = check_url("BOOKCAST_URL", env_str(env, "BOOKCAST_URL", DEFAULT_URL))
        if not 1 <= args.depth <= 50:
            raise SettingError(f"--depth={args.depth} is out of range [1, 50]")
        frames = 1 if args.once else args.frames
        if frames is not None and frames < 1:
            raise SettingError(f"--frames={frames} must be at least 1")
        if args.interval < 0:
            raise SettingError(f"--interval={args.interval} must not be negative")
        level = env_str(env, "BOOKCAST_LOG_LEVEL", "INFO").upper()
        if level not in LOG_LEVELS:
            raise SettingError(f"BOOKCAST_LOG_LEVEL={level!r} is not one of {', '.join(LOG_LEVELS)}")
        return cls(args.pair, url, args.depth, frames, args.interval, level)
