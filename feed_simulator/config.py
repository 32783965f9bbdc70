"""feed_simulator settings: read once at start-up from the environment and flags (flags win).

Environment: ``KAFKA_BOOTSTRAP`` (required), ``BOOKCAST_TOPIC`` (bookcast.deltas),
``BOOKCAST_PARTITIONS`` (8), ``BOOKCAST_PAIRS`` (comma list or a count; the 8 named pairs),
``BOOKCAST_FEED_RATE`` (events/s over all pairs, 200), ``BOOKCAST_FEED_SEED`` (random),
``BOOKCAST_FEED_SCENARIO`` (steady), ``BOOKCAST_FEED_ZIPF_EXPONENT`` (1.0, with the zipf
scenario), ``BOOKCAST_FEED_PROCESSES`` (1).
Flags only: ``--duration``, ``--max-levels``, ``--max-actions``, ``--progress-interval``,
``--compression``, ``--record``, ``--replay``, ``--speed``, the fault rates and ``--json``.
A bad value raises :class:`SettingError` naming the key or flag. docs/feed.md has them all.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from feed_simulator.faults import FaultRates
from feed_simulator.scenario import SCENARIOS, ZIPF_EXPONENT, ZIPF_MAX_EXPONENT, zipf_name
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
    scenario: str = "steady"  # a key of feed_simulator.scenario.SCENARIOS (zipf: "zipf:<exponent>")
    processes: int = 1  # generator processes; each pair stays in one of them
    max_actions: int = 6  # an exchange event is a batch of 1..max_actions actions
    record: str | None = None  # write every message sent to this file (see recording.py)
    replay: str | None = None  # send a recording instead of generating events
    speed: float = 1.0  # replay speed: 2 = twice as fast as recorded, 0 = as fast as possible
    faults: FaultRates = field(default_factory=FaultRates)
    json_report: str | None = None  # write the final report as JSON to this file


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
    parser.add_argument(
        "--scenario",
        help=f"traffic shape: {', '.join(SCENARIOS)} (BOOKCAST_FEED_SCENARIO, default steady)",
    )
    parser.add_argument(
        "--zipf-exponent",
        type=float,
        help=f"exponent of the zipf scenario (BOOKCAST_FEED_ZIPF_EXPONENT, default {ZIPF_EXPONENT:g})",
    )
    parser.add_argument(
        "--processes", type=int, help="generator processes, pairs spread over them (BOOKCAST_FEED_PROCESSES)"
    )
    parser.add_argument("--max-actions", type=int, help="actions per exchange event: 1..N (default 6)")
    parser.add_argument("--record", metavar="FILE", help="record every message sent (FILE.gz: gzip)")
    parser.add_argument("--replay", metavar="FILE", help="send a recording instead of generating")
    parser.add_argument("--speed", type=float, help="replay speed factor (default 1; 0: as fast as possible)")
    parser.add_argument("--duplicate-rate", type=float, help="chance per event of a duplicate (default 0)")
    parser.add_argument(
        "--redeliver-rate", type=float, help="chance per event of a late, out-of-order redelivery (default 0)"
    )
    parser.add_argument("--malformed-rate", type=float, help="chance per event of a malformed message")
    parser.add_argument("--json", metavar="FILE", help="write the final report as JSON to FILE")


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


def _probability(key: str, value: float | None) -> float:
    if value is None:
        return 0.0
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise SettingError(f"{key}={value} must be a probability within [0, 1]")
    return value


def _scenario(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """The scenario's name, with the zipf exponent folded in (``zipf:1.2``) so every process gets it."""
    key = "--scenario" if args.scenario else "BOOKCAST_FEED_SCENARIO"
    scenario = args.scenario or env_str(env, "BOOKCAST_FEED_SCENARIO", "steady")
    if scenario not in SCENARIOS:
        known = ", ".join(sorted(SCENARIOS))
        raise SettingError(f"{key}={scenario!r} is not one of {known} (or zipf:<exponent>)")
    if args.zipf_exponent is not None:
        if scenario != "zipf":
            raise SettingError(f"--zipf-exponent goes with --scenario zipf, not {scenario!r}")
        return _zipf("--zipf-exponent", args.zipf_exponent)
    if scenario == "zipf" and env.get("BOOKCAST_FEED_ZIPF_EXPONENT", "").strip():
        key = "BOOKCAST_FEED_ZIPF_EXPONENT"
        return _zipf(key, env_float(env, key, ZIPF_EXPONENT))
    return scenario


def _zipf(key: str, exponent: float) -> str:
    if not (0 < exponent <= ZIPF_MAX_EXPONENT and math.isfinite(exponent)):
        raise SettingError(f"{key}={exponent} must be within (0, {ZIPF_MAX_EXPONENT:g}]")
    return zipf_name(exponent)


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
    scenario = _scenario(args, env)
    if args.processes is not None:
        processes = check_range("--processes", args.processes, 1, 64)
    else:
        processes = env_int(env, "BOOKCAST_FEED_PROCESSES", 1, 1, 64)
    max_actions = 6 if args.max_actions is None else check_range("--max-actions", args.max_actions, 1, 1000)
    speed = 1.0 if args.speed is None else args.speed
    if not (speed >= 0 and math.isfinite(speed)):
        raise SettingError(f"--speed={speed} must be a finite number >= 0 (0: as fast as possible)")
    faults = FaultRates(
        _probability("--duplicate-rate", args.duplicate_rate),
        _probability("--redeliver-rate", args.redeliver_rate),
        _probability("--malformed-rate", args.malformed_rate),
    )
    if args.replay is not None:
        if not os.path.isfile(args.replay):
            raise SettingError(f"--replay={args.replay!r}: no such file")
        if args.record is not None:
            raise SettingError("--replay and --record cannot be combined (copy the file instead)")
        if faults.any:
            raise SettingError("--replay sends a recording as it is: record the faults instead")
    if processes > 1 and (args.replay is not None or args.record is not None):
        raise SettingError("--record and --replay run in one process: drop --processes")
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
        scenario=scenario,
        processes=processes,
        max_actions=max_actions,
        record=args.record,
        replay=args.replay,
        speed=speed,
        faults=faults,
        json_report=args.json,
    )


def parse_config(argv: list[str] | None = None, env: Mapping[str, str] = os.environ) -> FeedConfig:
    """Parse flags (argparse exits 2 on a malformed flag) and build the config."""
    parser = argparse.ArgumentParser(prog="bookcast feed", description="Simulated exchange feed into Kafka.")
    add_arguments(parser)
    return load_config(parser.parse_args(argv), env)
