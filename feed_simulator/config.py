"""feed_simulator settings: read once at start-up from the environment and flags (flags win).

Environment: ``KAFKA_BOOTSTRAP`` (required), ``BOOKCAST_TOPIC`` (bookcast.deltas),
``BOOKCAST_PARTITIONS`` (8), ``BOOKCAST_PAIRS`` (comma list or a count; the 8 named pairs),
``BOOKCAST_FEED_RATE`` (events/s over all pairs, 200), ``BOOKCAST_FEED_SEED`` (random).
Flags only: ``--duration``, ``--max-levels``, ``--progress-interval``, ``--compression``.
A bad value raises :class:`SettingError` naming the key or flag.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from mdcore.instruments import default_pairs
from mdcore.settings import SettingError, check_range, env_float, env_int, env_str, parse_pairs

_NO_SERVERS = " (`bookcast up` starts an embedded Kafka and sets it for you)"
COMPRESSIONS = ("lz4", "zstd", "snappy", "gzip", "none")
MAX_PAIRS = 10_000  # SYN000-USD … SYN9999-USD plus the named ones is the whole catalogue


@dataclass(frozen=True, slots=True)
class FeedConfig:
    kafka_bootstrap: str
    topic: str = "bookcast.deltas"
    partitions: int = 8
    pairs: tuple[str, ...] = ()
    rate: float = 200.0  # exchange events per second over all pairs
    duration: float | None = None  # seconds; None runs until stopped
    seed: int | None = None  # None: a fresh seed, logged so the run can be repeated
    max_levels: int = 500  # per side of each book
    progress_interval: float = 5.0  # seconds between progress lines
    compression: str = "lz4"  # accepted by Tansu and Apache Kafka alike (checked)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (KAFKA_BOOTSTRAP)")
    parser.add_argument("--topic", help="Kafka topic (BOOKCAST_TOPIC, default bookcast.deltas)")
    parser.add_argument("--partitions", type=int, help="partitions of a new topic (BOOKCAST_PARTITIONS)")
    parser.add_argument(
        "--pairs", help="a count N (the first N catalogue pairs) or a comma list of pairs (BOOKCAST_PAIRS)"
    )
    parser.add_argument("--rate", type=float, help="exchange events/s over all pairs (BOOKCAST_FEED_RATE)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: never)")
    parser.add_argument("--seed", type=int, help="random seed for a reproducible feed (BOOKCAST_FEED_SEED)")
    parser.add_argument("--max-levels", type=int, help="maximum levels per side of each book (default 500)")
    parser.add_argument("--progress-interval", type=float, help="seconds between progress lines (default 5)")
    parser.add_argument("--compression", choices=COMPRESSIONS, help="Kafka compression.type (default lz4)")


def parse_pair_spec(key: str, raw: str | None) -> tuple[str, ...]:
    """``"3"`` -> the first 3 catalogue pairs; ``"BTC-USD,ETH-USD"`` -> those; empty -> the named 8."""
    text = (raw or "").strip()
    if text.isdigit():
        count = check_range(key, int(text), 1, MAX_PAIRS)
        return tuple(default_pairs(count))
    return parse_pairs(key, text)


def _positive(key: str, value: float) -> float:
    if not (value > 0 and math.isfinite(value)):
        raise SettingError(f"{key}={value} must be a finite number greater than 0")
    return value


def load_config(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> FeedConfig:
    """Flags override environment; a missing or bad value raises :class:`SettingError`."""
    try:
        bootstrap = args.bootstrap or env_str(env, "KAFKA_BOOTSTRAP")
    except SettingError as exc:
        raise SettingError(f"{exc}{_NO_SERVERS}") from None

    if args.partitions is not None:
        partitions = check_range("--partitions", args.partitions, 1, 10_000)
    else:
        partitions = env_int(env, "BOOKCAST_PARTITIONS", 8, 1, 10_000)

    if args.pairs is not None:
        pairs = parse_pair_spec("--pairs", args.pairs)
    else:
        pairs = parse_pair_spec("BOOKCAST_PAIRS", env.get("BOOKCAST_PAIRS"))

    if args.rate is not None:
        rate = _positive("--rate", args.rate)
    else:
        rate = _positive("BOOKCAST_FEED_RATE", env_float(env, "BOOKCAST_FEED_RATE", 200.0))

    if args.seed is not None:
        seed: int | None = args.seed
    else:
        raw_seed = env.get("BOOKCAST_FEED_SEED", "").strip()
        seed = env_int(env, "BOOKCAST_FEED_SEED", 0) if raw_seed else None

    duration = None if args.duration is None else _positive("--duration", args.duration)
    max_levels = 500 if args.max_levels is None else check_range("--max-levels", args.max_levels, 1, 100_000)
    progress = 5.0 if args.progress_interval is None else args.progress_interval
    return FeedConfig(
        kafka_bootstrap=bootstrap,
        topic=args.topic or env_str(env, "BOOKCAST_TOPIC", "bookcast.deltas"),
        partitions=partitions,
        pairs=pairs,
        rate=rate,
        duration=duration,
        seed=seed,
        max_levels=max_levels,
        progress_interval=_positive("--progress-interval", progress),
        compression=args.compression or "lz4",
    )


def parse_config(argv: list[str] | None = None, env: Mapping[str, str] = os.environ) -> FeedConfig:
    """Parse flags (argparse exits 2 on a malformed flag) and build the config."""
    parser = argparse.ArgumentParser(prog="bookcast feed", description="Simulated exchange feed into Kafka.")
    add_arguments(parser)
    return load_config(parser.parse_args(argv), env)
