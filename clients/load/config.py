"""``bookcast load`` settings and how connections, pairs and processes are laid out.

Read once from flags and the environment (``BOOKCAST_URL``, ``BOOKCAST_LOG_LEVEL``); a bad
value raises :class:`SettingError` naming the flag. The layout functions are pure, so which
connection follows which pairs on which process is tested with plain calls.

Two layouts: *spread* (consecutive connections take consecutive pairs of the pool, so every
pair gets the same number of subscribers) and *drawn* (``--zipf S``: each connection draws
its pairs by Zipf-like popularity, the pool's order being the rank — as the feed's ``zipf``
scenario ranks them — so most clients want the few pairs that trade most, as on an
exchange). Draws depend only on ``--seed`` and the connection's index.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import ipaddress
import itertools
import math
import os
import random
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
from websockets.uri import parse_uri

from clients.config import DEFAULT_URL, LOG_LEVELS, check_url
from clients.load.worker import ConnSpec, WorkerPlan
from mdcore.instruments import default_pairs
from mdcore.settings import SettingError, check_range, env_float, env_str, parse_pairs


@dataclass(frozen=True, slots=True)
class LoadConfig:
    urls: tuple[str, ...]
    connections: int = 100
    pairs_per_connection: int = 1  # each connection follows this many pairs of the pool ...
    pairs: tuple[str, ...] | None = None  # ... or exactly these
    pairs_max: int = 0  # > pairs_per_connection: each connection draws its count from that range
    zipf: float | None = None  # set: draw each connection's pairs by popularity, with this exponent
    all_pairs: int = 0  # more connections, each following the whole pool
    seed: int = 1  # of the draws
    timeline: str | None = None  # write one JSON line per round (counters, histograms, synced)
    pool: tuple[str, ...] | None = None  # pairs to spread over connections (None: ask GET /pairs)
    duration: float = 10.0
    processes: int = 0  # 0: one per CPU, at most one per connection
    ramp: float = 0.0  # new connections per second over all processes; 0: as fast as allowed
    verify_sample: float = 0.02  # share of connections that verify every checksum
    open_timeout: float = 10.0
    open_concurrency: int = 200  # connection attempts in flight per process
    progress_interval: float = 2.0
    json_report: str | None = None
    quiet: bool = False
    log_level: str = "WARNING"
    sources: tuple[str, ...] = ()  # local addresses to connect from, round-robin (empty: any)
    redis_url: str | None = None  # set: publish a status on the bus for the dashboard (docs/observability.md)
    redis_prefix: str = "bookcast"
    status_interval: float = 1.0  # seconds between statuses on the bus
    status_id: str = ""  # this run's name on the bus ("": host-pid)

    @property
    def report_interval(self) -> float:
        """How often workers report: every progress line, and every status when there is a bus."""
        if self.redis_url:
            return min(self.progress_interval, self.status_interval)
        return self.progress_interval

    @property
    def total_connections(self) -> int:
        """Every connection: the laid-out ones and those following the whole pool."""
        return self.connections + self.all_pairs

    @property
    def worker_count(self) -> int:
        wanted = self.processes or (os.cpu_count() or 1)
        return max(1, min(wanted, self.total_connections))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bookcast load",
        description="WebSocket load generator: many connections, every seq checked, latency histograms.",
    )
    parser.add_argument(
        "--url",
        action="append",
        help=f"gateway URL; repeat or comma-separate for several (default: $BOOKCAST_URL or {DEFAULT_URL})",
    )
    parser.add_argument("--connections", type=int, default=100, help="connections in all (default 100)")
    parser.add_argument(
        "--pairs",
        default="1",
        help="per connection: a count N, a range N-M (drawn per connection, with --zipf) or a comma list "
        "(default 1)",
    )
    parser.add_argument(
        "--zipf",
        type=float,
        metavar="S",
        help="draw each connection's pairs by Zipf popularity with exponent S (the pool's order is the rank, "
        "as in the feed's zipf scenario; 0: uniform draws)",
    )
    parser.add_argument(
        "--all-pairs",
        type=int,
        default=0,
        metavar="K",
        help="K more connections following every pair of the pool",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the drawn layout (default 1)")
    parser.add_argument(
        "--timeline",
        metavar="FILE",
        help="write a JSON line per round: counters, histograms, synced connections",
    )
    parser.add_argument(
        "--pool", help="pairs to spread connections over: a count N or a comma list (default: GET /pairs)"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to run (default 10)")
    parser.add_argument("--processes", type=int, default=0, help="worker processes (default: one per CPU)")
    parser.add_argument(
        "--ramp", type=float, default=0.0, help="connections opened per second (default: all at once)"
    )
    parser.add_argument(
        "--verify-sample",
        type=float,
        default=0.02,
        help="share of connections verifying checksums (default 0.02)",
    )
    parser.add_argument(
        "--open-timeout", type=float, default=10.0, help="seconds per connection attempt (default 10)"
    )
    parser.add_argument("--progress-interval", type=float, default=2.0, help="seconds between progress lines")
    parser.add_argument("--json", metavar="FILE", help="write the final report as JSON to FILE")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--source",
        action="append",
        help="local address to connect from; repeat or comma-separate to spread connections (e.g. 127.0.0.2)",
    )
    parser.add_argument(
        "--redis-url",
        help="publish a status every second to this Redis for the gateway's /dashboard (default: $REDIS_URL)",
    )
    parser.add_argument("--status-id", help="this run's name on the status bus (default: host-pid)")
    return parser


def _pairs_spec(key: str, text: str) -> tuple[int, tuple[str, ...] | None]:
    text = text.strip()
    if text.isdigit():
        return check_range(key, int(text), 1, 1024), None
    pairs = parse_pairs(key, text)
    return len(pairs), pairs


def _pairs_range(text: str) -> tuple[int, int] | None:
    """``"1-5"`` -> (1, 5); None if ``text`` is not a range of counts."""
    low, dash, high = text.strip().partition("-")
    if not dash or not low.strip().isdigit() or not high.strip().isdigit():
        return None
    first = check_range("--pairs", int(low), 1, 1024)
    last = check_range("--pairs", int(high), 1, 1024)
    if last < first:
        raise SettingError(f"--pairs {text}: the range must go up (N-M with N <= M)")
    return first, last


def _addresses(raw: list[str] | None) -> tuple[str, ...]:
    addresses = tuple(a.strip() for item in raw or () for a in item.split(",") if a.strip())
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise SettingError(f"--source={address!r} is not an IP address") from None
    return addresses


def load_config(args: argparse.Namespace, env: Mapping[str, str]) -> LoadConfig:
    if args.url:
        urls = tuple(check_url("--url", u.strip()) for raw in args.url for u in raw.split(",") if u.strip())
    else:
        urls = (check_url("BOOKCAST_URL", env_str(env, "BOOKCAST_URL", DEFAULT_URL)),)
    span = _pairs_range(args.pairs)
    if span is not None:
        count, pairs_max, pairs = span[0], span[1], None
    else:
        count, pairs = _pairs_spec("--pairs", args.pairs)
        pairs_max = count
    zipf = args.zipf
    if zipf is not None:
        if not (0 <= zipf <= 10 and math.isfinite(zipf)):
            raise SettingError(f"--zipf={zipf} must be within [0, 10] (0: uniform draws)")
        if pairs is not None:
            raise SettingError("--zipf draws pairs from the pool: give --pairs a count or N-M, not names")
    elif pairs_max != count:
        raise SettingError(f"--pairs {args.pairs}: a range draws its counts, give --zipf S (0: uniform)")
    pool = None
    if args.pool is not None:
        pool_size, listed = _pairs_spec("--pool", args.pool)
        pool = listed or tuple(default_pairs(pool_size))
    positive = {
        "--duration": args.duration,
        "--open-timeout": args.open_timeout,
        "--progress-interval": args.progress_interval,
    }
    for key, value in positive.items():
        if not (value > 0 and math.isfinite(value)):
            raise SettingError(f"{key}={value} must be a finite number greater than 0")
    if not (0.0 <= args.verify_sample <= 1.0):
        raise SettingError(f"--verify-sample={args.verify_sample} must be within [0, 1]")
    if not (args.ramp >= 0 and math.isfinite(args.ramp)):
        raise SettingError(f"--ramp={args.ramp} must be >= 0 (0: all at once)")
    redis_url = (args.redis_url or env.get("REDIS_URL", "")).strip() or None
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingError(f"--redis-url={redis_url!r} is not a redis://, rediss:// or unix:// URL")
    level = env_str(env, "BOOKCAST_LOG_LEVEL", "WARNING").upper()
    if level not in LOG_LEVELS:
        raise SettingError(f"BOOKCAST_LOG_LEVEL={level!r} is not one of {', '.join(LOG_LEVELS)}")
    return LoadConfig(
        urls=urls,
        connections=check_range("--connections", args.connections, 1, 1_000_000),
        pairs_per_connection=count,
        pairs=pairs,
        pairs_max=pairs_max,
        zipf=zipf,
        all_pairs=check_range("--all-pairs", args.all_pairs, 0, 10_000),
        seed=args.seed,
        timeline=args.timeline,
        pool=pool,
        duration=args.duration,
        processes=check_range("--processes", args.processes, 0, 256),
        ramp=args.ramp,
        verify_sample=args.verify_sample,
        open_timeout=args.open_timeout,
        progress_interval=args.progress_interval,
        json_report=args.json,
        quiet=args.quiet,
        log_level=level,
        sources=_addresses(args.source),
        redis_url=redis_url,
        redis_prefix=env_str(env, "BOOKCAST_REDIS_PREFIX", "bookcast"),
        status_interval=env_float(env, "BOOKCAST_STATUS_BUS_S", 1.0, 0.1, 60.0),
        status_id=(args.status_id or "").strip() or f"{socket.gethostname()}-{os.getpid()}",
    )


def http_url(ws_url: str, path: str) -> str:
    """The gateway's HTTP URL for ``path`` on the same host and port as ``ws_url``."""
    uri = parse_uri(ws_url)
    scheme = "https" if uri.secure else "http"
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    return f"{scheme}://{host}:{uri.port}{path}"


def fetch_pool(ws_url: str, timeout: float = 5.0) -> tuple[str, ...]:
    """The pairs a gateway offers (``GET /pairs``); SettingError if it cannot tell."""
    url = http_url(ws_url, "/pairs")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            pairs = orjson.loads(answer.read())["pairs"]
    except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError) as exc:
        raise SettingError(f"cannot read the pairs from {url} ({exc}); give --pool") from None
    if not pairs:
        raise SettingError(f"{url} offers no pairs; give --pool")
    return tuple(pairs)


def pairs_for(index: int, pool: Sequence[str], per_connection: int) -> tuple[str, ...]:
    """Connection ``index``'s pairs: the next ``per_connection`` of the pool, wrapping around.

    Consecutive connections start at consecutive offsets, so every pair gets the same number
    of subscribers (give or take one).
    """
    if per_connection > len(pool):
        raise SettingError(f"--pairs {per_connection} is more than the {len(pool)} pairs of the pool")
    start = index * per_connection
    return tuple(pool[(start + k) % len(pool)] for k in range(per_connection))


def zipf_weights(count: int, exponent: float) -> list[float]:
    """Popularity of ``count`` pairs by rank: ``1 / rank**exponent``, summing to 1.

    The same shares as the feed's ``zipf`` scenario (``feed_simulator.scenario.zipf_weights``;
    a test keeps them equal), so clients want the pairs that trade most.
    """
    raw = [1.0 / rank**exponent for rank in range(1, count + 1)]
    total = sum(raw)
    return [w / total for w in raw]


@functools.lru_cache(maxsize=8)
def _cumulative(count: int, exponent: float) -> tuple[float, ...]:
    return tuple(itertools.accumulate(zipf_weights(count, exponent)))


def drawn_pairs(
    index: int, pool: Sequence[str], low: int, high: int, exponent: float, seed: int
) -> tuple[str, ...]:
    """Connection ``index``'s pairs: ``low``..``high`` of them, drawn by popularity without repeats.

    Deterministic: the same seed and index give the same pairs, in popularity order, whatever
    else the run holds. A pair of rank r is drawn with weight ``1 / r**exponent``.
    """
    if high > len(pool):
        raise SettingError(f"--pairs {high} is more than the {len(pool)} pairs of the pool")
    rng = random.Random(f"bookcast-load:{seed}:{index}")
    count = rng.randint(low, high)
    cumulative = _cumulative(len(pool), exponent)
    total = cumulative[-1]
    chosen: set[int] = set()
    for _ in range(64 * count):  # rejection draws: quick while the pairs left keep enough weight
        if len(chosen) == count:
            break
        chosen.add(min(bisect.bisect_right(cumulative, rng.random() * total), len(pool) - 1))
    for rank in range(len(pool)):  # what rejection could not find (a steep exponent): the next most popular
        if len(chosen) == count:
            break
        chosen.add(rank)
    return tuple(pool[i] for i in sorted(chosen))


def layout(cfg: LoadConfig, pool: Sequence[str]) -> list[tuple[tuple[str, ...], str]]:
    """Every connection's pairs and group, in index order: the laid-out ones, then the all-pairs ones."""
    out: list[tuple[tuple[str, ...], str]] = []
    for index in range(cfg.connections):
        if cfg.pairs is not None:
            out.append((cfg.pairs, "listed"))
        elif cfg.zipf is not None:
            low, high = cfg.pairs_per_connection, max(cfg.pairs_max, cfg.pairs_per_connection)
            out.append((drawn_pairs(index, pool, low, high, cfg.zipf, cfg.seed), "drawn"))
        else:
            out.append((pairs_for(index, pool, cfg.pairs_per_connection), "spread"))
    if cfg.all_pairs and not pool:
        raise SettingError("--all-pairs needs the pool's pairs (give --pool)")
    out += [(tuple(pool), "all-pairs")] * cfg.all_pairs
    return out


def verifies(index: int, share: float) -> bool:
    """Whether connection ``index`` verifies checksums: ``share`` of them, evenly spread, the first always."""
    return index == 0 or math.floor(index * share) > math.floor((index - 1) * share)


def plan_workers(cfg: LoadConfig, pool: Sequence[str]) -> list[WorkerPlan]:
    """Connections dealt round-robin to the processes, URLs round-robin to the connections."""
    workers = cfg.worker_count
    specs: list[list[ConnSpec]] = [[] for _ in range(workers)]
    for index, (pairs, group) in enumerate(layout(cfg, pool)):
        source = cfg.sources[index % len(cfg.sources)] if cfg.sources else None
        url = cfg.urls[index % len(cfg.urls)]
        # A client on every pair verifying every checksum would cost a core by itself: never sampled.
        verify = group != "all-pairs" and verifies(index, cfg.verify_sample)
        spec = ConnSpec(index, url, pairs, verify, source, group)
        specs[index % workers].append(spec)
    return [
        WorkerPlan(
            worker=w,
            specs=tuple(specs[w]),
            duration=cfg.duration,
            interval=cfg.report_interval,
            open_timeout=cfg.open_timeout,
            open_concurrency=cfg.open_concurrency,
            ramp=cfg.ramp / workers,
        )
        for w in range(workers)
    ]
