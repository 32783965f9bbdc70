"""Settings of ``bookcast bench realistic``: flags, the defaults of issue 12's goals, and ``--quick``.

Pure: parsing and checking only, so what a run will do is tested without starting anything.
The defaults are the goals' own set-up (200 pairs at 3,000 events/s with Zipf popularity;
2,000 clients on 1–5 pairs opened at 500/s from 4 addresses; a reconnect storm of 3,000
clients; md_service paused 15 s). ``--quick`` shrinks every phase to a pass of a few
hundred clients that checks the benchmark works end to end; its figures are not the goals'.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields, replace

PHASES = ("ramp", "storm", "pause", "overload", "synthetic")
DEFAULT_PHASES = ("ramp", "storm", "pause", "synthetic")
QUICK_PHASES = ("ramp", "storm", "pause", "overload")
DEMO_PAIRS = 8  # goal 1: a client on the 8 demo (named) pairs
MAX_PAIRS = 1_000


@dataclass(frozen=True, slots=True)
class Settings:
    """One run. Every figure in the report is measured under exactly these."""

    pairs: int = 200  # the first N catalogue pairs, ranked by popularity in that order
    rate: float = 3_000.0  # exchange events/s over all pairs, for the whole run
    zipf: float = 1.0  # popularity exponent of the feed and of the clients' draws
    clients: int = 2_000  # drawn clients of phase 1 (each on pairs_min..pairs_max pairs)
    pairs_min: int = 1
    pairs_max: int = 5
    all_pairs_clients: int = 5  # more clients following every pair
    demo_clients: int = 5  # more clients on the 8 named pairs (goal 1's frames per window)
    ramp: float = 500.0  # new connections per second
    sources: int = 4  # loopback source addresses 127.0.0.1 … 127.0.0.N
    gateways: int = 1  # gateway processes (--workers 1 each); the storm kills the first
    steady: float = 20.0  # seconds of steady measurement after the ramp
    settle: float = 2.0  # seconds between "everyone synced" and the steady window
    storm_clients: int = 3_000  # clients on the killed gateway (more are added before the storm)
    storm_timeout: float = 60.0  # after the restart; clients not synced by then are gone for good
    wait_timeout: float = 60.0  # slack past N / ramp for a ramp to end (every client synced)
    pause: float = 15.0  # seconds md_service stays stopped
    catch_up_timeout: float = 60.0
    lag_threshold: int = 1_000  # consumer lag (messages) that counts as caught up
    overload_clients: int = 0  # 0: twice `clients`
    overload_sources: int = 8
    synthetic_seconds: float = 10.0
    load_processes: int = 2
    verify_sample: float = 0.01  # share of the drawn clients that verify every checksum
    seed: int = 7
    phases: tuple[str, ...] = DEFAULT_PHASES
    quick: bool = False
    json_path: str | None = None

    @property
    def overload(self) -> int:
        return self.overload_clients or 2 * self.clients

    @property
    def phase_one_clients(self) -> int:
        """Every client of phase 1: drawn, all-pairs and demo ones."""
        return self.clients + self.all_pairs_clients + self.demo_clients

    def source_list(self, count: int | None = None) -> tuple[str, ...]:
        return tuple(f"127.0.0.{i}" for i in range(1, (count or self.sources) + 1))


QUICK = {
    "pairs": 50, "rate": 1_000.0, "clients": 200, "all_pairs_clients": 2, "demo_clients": 2,
    "steady": 3.0, "settle": 1.0, "storm_clients": 200, "storm_timeout": 15.0, "wait_timeout": 15.0,
    "pause": 3.0, "catch_up_timeout": 15.0, "overload_clients": 400, "synthetic_seconds": 3.0,
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bookcast bench realistic",
        description="The real pipeline (feed, md_service, gateways on embedded Kafka and Redis) under a "
        "venue's traffic: Zipf-popular pairs, clients ramped in, a reconnect storm, md_service paused.",
    )
    d = Settings()
    p.add_argument("--pairs", type=int, help=f"pairs (default {d.pairs}, at most {MAX_PAIRS})")
    p.add_argument("--rate", type=float, help=f"exchange events/s, whole run (default {d.rate:g})")
    p.add_argument("--zipf", type=float, help=f"popularity exponent, feed and clients (default {d.zipf:g})")
    p.add_argument("--clients", type=int, help=f"clients of the ramp (default {d.clients})")
    p.add_argument(
        "--pairs-per-client", help=f"N or N-M, drawn by popularity (default {d.pairs_min}-{d.pairs_max})"
    )
    p.add_argument(
        "--all-pairs-clients", type=int, help=f"clients on every pair (default {d.all_pairs_clients})"
    )
    p.add_argument(
        "--demo-clients", type=int, help=f"clients on the 8 named pairs (default {d.demo_clients})"
    )
    p.add_argument("--ramp", type=float, help=f"connections opened per second (default {d.ramp:g})")
    p.add_argument("--sources", type=int, help=f"loopback source addresses (default {d.sources})")
    p.add_argument("--gateways", type=int, help=f"gateway processes (default {d.gateways})")
    p.add_argument("--steady", type=float, help=f"seconds of steady measurement (default {d.steady:g})")
    p.add_argument(
        "--storm-clients", type=int, help=f"clients of the killed gateway (default {d.storm_clients})"
    )
    p.add_argument("--storm-timeout", type=float, help=f"after the restart (default {d.storm_timeout:g})")
    p.add_argument(
        "--wait-timeout", type=float, help=f"slack past N/ramp for a ramp (default {d.wait_timeout:g})"
    )
    p.add_argument("--pause", type=float, help=f"seconds md_service is stopped (default {d.pause:g})")
    p.add_argument(
        "--overload-clients", type=int, help="clients of the overload phase (default 2x --clients)"
    )
    p.add_argument(
        "--synthetic-seconds", type=float, help=f"bench fanout pass (default {d.synthetic_seconds:g})"
    )
    p.add_argument(
        "--load-processes", type=int, help=f"processes of the main load (default {d.load_processes})"
    )
    p.add_argument(
        "--verify-sample", type=float, help=f"share verifying checksums (default {d.verify_sample:g})"
    )
    p.add_argument("--seed", type=int, help=f"feed and layout seed (default {d.seed})")
    p.add_argument(
        "--phases",
        help=f"comma list of {','.join(PHASES)} (default {','.join(DEFAULT_PHASES)}; --quick: "
        f"{','.join(QUICK_PHASES)}); the ramp always runs first: the others need its clients and figures",
    )
    p.add_argument(
        "--quick", action="store_true", help="a small pass (40-90 s) that checks the benchmark works"
    )
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    return p


class SettingsError(ValueError):
    """A flag out of range, naming it."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise SettingsError(message)


def settings_from(args: argparse.Namespace) -> Settings:
    """Defaults (or --quick's), then every flag given; raises SettingsError naming a bad flag."""
    base = replace(Settings(), quick=True, phases=QUICK_PHASES, **QUICK) if args.quick else Settings()
    names = {f.name for f in fields(Settings)}
    given = {
        key: value
        for key, value in vars(args).items()
        if value is not None and key in names and key not in ("phases", "quick")
    }
    s = replace(base, **given)
    if args.pairs_per_client:
        low, _, high = args.pairs_per_client.partition("-")
        _check(low.isdigit() and (not high or high.isdigit()), "--pairs-per-client must be N or N-M")
        s = replace(s, pairs_min=int(low), pairs_max=int(high or low))
    if args.phases:
        phases = tuple(p.strip() for p in args.phases.split(",") if p.strip())
        _check(bool(phases) and all(p in PHASES for p in phases), f"--phases: choose from {','.join(PHASES)}")
        s = replace(s, phases=tuple(p for p in PHASES if p in phases or p == "ramp"))
    if args.json:
        s = replace(s, json_path=args.json)
    validate(s)
    return s


def validate(s: Settings) -> None:
    _check(DEMO_PAIRS <= s.pairs <= MAX_PAIRS, f"--pairs must be within {DEMO_PAIRS}..{MAX_PAIRS}")
    _check(s.rate > 0 and math.isfinite(s.rate), "--rate must be a finite number > 0")
    _check(0 <= s.zipf <= 5, "--zipf must be within [0, 5]")
    _check(1 <= s.clients <= 100_000, "--clients must be within 1..100000")
    _check(1 <= s.pairs_min <= s.pairs_max <= min(s.pairs, 100), "--pairs-per-client: 1 <= N <= M <= 100")
    _check(0 <= s.all_pairs_clients <= 100 and 0 <= s.demo_clients <= 100, "--*-clients extras: 0..100")
    _check(s.ramp > 0 and math.isfinite(s.ramp), "--ramp must be > 0")
    _check(1 <= s.sources <= 250 and 1 <= s.overload_sources <= 250, "--sources must be within 1..250")
    _check(1 <= s.gateways <= 8, "--gateways must be within 1..8")
    _check(
        s.steady >= 1 and s.pause >= 1 and s.synthetic_seconds >= 1,
        "--steady, --pause, --synthetic-seconds: >= 1",
    )
    _check(s.storm_clients >= 0 and s.overload_clients >= 0, "client counts must be >= 0")
    _check(s.storm_timeout > 0 and s.wait_timeout > 0, "--storm-timeout and --wait-timeout must be > 0")
    _check(1 <= s.load_processes <= 16, "--load-processes must be within 1..16")
    _check(0 <= s.verify_sample <= 1, "--verify-sample must be within [0, 1]")
