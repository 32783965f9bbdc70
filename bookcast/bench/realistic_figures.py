"""The realistic benchmark's arithmetic, pure: windows of load timelines, the storm, the catch-up, CPU.

Everything here works on plain values the orchestration collected — the JSON lines of
``bookcast load --timeline``, Prometheus text, CPU seconds — so each figure of the report
is derived in one place and tested with made-up inputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clients.latency import summarize
from clients.load.stats import ConnTimes, Latencies

Round = Mapping[str, Any]  # one line of a load timeline (clients/load/timeline.py)

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def prom_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a Prometheus text exposition: (name, labels, value)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        labels = dict(_LABEL.findall(match.group(2) or ""))
        out.append((match.group(1), labels, value))
    return out


def prom_sum(
    samples: Iterable[tuple[str, dict[str, str], float]], metric: str, labels: Mapping[str, str] | None = None
) -> float | None:
    """The sum of ``metric``'s samples whose labels include ``labels``; None if there is none."""
    wanted = dict(labels or {})
    values = [v for n, ls, v in samples if n == metric and all(ls.get(k) == w for k, w in wanted.items())]
    return sum(values) if values else None


@dataclass
class Window:
    """What the clients of one or more loads received between two instants."""

    seconds: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    latencies: Latencies = field(default_factory=Latencies)
    times: ConnTimes = field(default_factory=ConnTimes)
    groups: dict[str, dict[str, int]] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)  # per second, summed over loads
    connections: int = 0
    open: int = 0
    synced: int = 0
    loop_lag_ms: float = 0.0  # how late a load generator's loop ran, at worst: its own health

    def add(self, other: Window) -> None:
        self.seconds = max(self.seconds, other.seconds)
        self.loop_lag_ms = max(self.loop_lag_ms, other.loop_lag_ms)
        for name, value in other.counters.items():
            self.counters[name] = self.counters.get(name, 0) + value
        for name, value in other.rates.items():
            self.rates[name] = self.rates.get(name, 0.0) + value
        self.latencies.add(other.latencies)
        self.times.add(other.times)
        for name, tally in other.groups.items():
            mine = self.groups.setdefault(name, {"connections": 0, "open": 0, "frames": 0, "deltas": 0})
            for key, value in tally.items():
                mine[key] = mine.get(key, 0) + value
        self.connections += other.connections
        self.open += other.open
        self.synced += other.synced

    def count(self, name: str) -> int:
        return self.counters.get(name, 0)

    def per_client(self, group: str | None = None) -> dict[str, float | None]:
        """Frames each client received per second and deltas per frame (all clients, or one group).

        Per *open* client (at the window's end): clients still refused or reconnecting receive
        nothing, and dividing by them would understate what a connected client gets.
        """
        if group is None:
            conns, frames, deltas = self.open, self.count("frames"), self.count("deltas")
        else:
            tally = self.groups.get(group, {})
            conns = tally.get("open", tally.get("connections", 0))
            frames, deltas = tally.get("frames", 0), tally.get("deltas", 0)
        return {
            "frames_per_client_per_s": frames / conns / self.seconds if conns and self.seconds else None,
            "deltas_per_frame": deltas / frames if frames else None,
        }


def _decode(encoded: Mapping[str, str]) -> dict[str, bytes]:
    return {name: text.encode("ascii") for name, text in encoded.items()}


def window(rounds: Sequence[Round], t_from: float, t_to: float) -> Window:
    """One load's figures over at least ``[t_from, t_to]``, on its round boundaries.

    The base is the last round at or before ``t_from`` (none: the load's start, all zeros),
    the end the first round at or after ``t_to`` (none yet: the last round); counters are
    the difference, histograms those of the rounds after the base up to the end, seconds
    the time between the two. A load whose rounds come late (a starved generator) widens
    its window rather than leaving it empty. No round after ``t_from``: all zeros.
    """
    out = Window()
    later = [r for r in rounds if r["t"] > t_from]
    if not later:
        return out
    end = next((r for r in later if r["t"] >= t_to), later[-1])
    before = [r for r in rounds if r["t"] <= t_from]
    base = before[-1] if before else None
    inside = [r for r in later if r["t"] <= end["t"]]
    start_t = base["t"] if base is not None else end["t"] - end["elapsed"]
    out.seconds = max(end["t"] - start_t, 1e-9)
    zero: Mapping[str, int] = {}
    base_counters = base["counters"] if base is not None else zero
    out.counters = {k: v - base_counters.get(k, 0) for k, v in end["counters"].items()}
    out.rates = {k: v / out.seconds for k, v in out.counters.items()}
    for r in inside:
        out.latencies.add_encoded(_decode(r["latencies"]))
        if "times" in r:
            out.times.add_encoded(_decode(r["times"]))
    base_groups = base.get("groups", {}) if base is not None else {}
    for name, tally in end.get("groups", {}).items():
        was = base_groups.get(name, {})
        out.groups[name] = {
            "connections": tally["connections"],
            "open": tally.get("open", tally["connections"]),
            "frames": tally["frames"] - was.get("frames", 0),
            "deltas": tally["deltas"] - was.get("deltas", 0),
        }
    out.connections, out.open, out.synced = end["connections"], end["open"], end["synced"]
    out.loop_lag_ms = max(r.get("loop_lag_ms", 0.0) for r in inside)
    return out


def combined(timelines: Iterable[Sequence[Round]], t_from: float, t_to: float) -> Window:
    """Several loads' windows added up (rates per load, then summed: their rounds do not line up)."""
    total = Window()
    for rounds in timelines:
        total.add(window(rounds, t_from, t_to))
    return total


def latency_ms(w: Window) -> dict[str, dict[str, float | int]]:
    """p50/p90/p99/p99.9/max of a window's latencies and connection times, in ms."""
    return {
        "window_to_receipt": summarize(w.latencies.window),
        "exchange_to_receipt": summarize(w.latencies.exchange),
        **{name: summarize(getattr(w.times, name)) for name in ConnTimes.NAMES},
    }


def all_open_at(rounds: Sequence[Round]) -> float | None:
    """Wall-clock time at which every connection of a load had opened once (None: not yet)."""
    for r in rounds:
        after = r.get("all_open_after")
        if after is not None:
            return r["t"] - r["elapsed"] + after
    return None


def all_synced_at(rounds: Sequence[Round], after: float) -> float | None:
    """Wall-clock time (s) at which, after ``after``, every connection of a load was synced again.

    The first round after ``after`` in which every connection is synced; the moment is that
    round's ``synced_ns`` — when its last connection became synced — not the round's own time.
    """
    for r in rounds:
        if r["t"] > after and r["synced"] >= r["connections"]:
            return max(r["synced_ns"] / 1e9, after)
    return None


@dataclass(frozen=True, slots=True)
class StormOutcome:
    synced_after_s: float | None  # from the restart until every client was synced again; None: never
    gone: int  # clients not synced again by the deadline
    clients: int


def storm_outcome(timelines: Sequence[Sequence[Round]], restart: float, deadline: float) -> StormOutcome:
    """When every client of every load was synced again after a gateway restart, and who never was."""
    done: list[float] = []
    gone = clients = 0
    for rounds in timelines:
        upto = [r for r in rounds if r["t"] <= deadline]
        if upto:
            clients += upto[-1]["connections"]
        at = all_synced_at(upto, restart)
        if at is None:
            last = upto[-1] if upto else None
            gone += last["connections"] - last["synced"] if last is not None else 0
        else:
            done.append(at)
    synced = max(done) - restart if done and not gone else None
    return StormOutcome(synced, gone, clients)


@dataclass(frozen=True, slots=True)
class LagSample:
    t: float  # seconds since md_service was resumed
    md_lag: float | None  # what md_service reports (bookcast_md_consumer_lag summed); None: no answer
    outside_lag: float | None  # events the feed had delivered minus those md_service consumed
    consumed: float | None  # md_service's events consumed so far


@dataclass(frozen=True, slots=True)
class CatchUp:
    seconds: float | None  # from resuming until the lag was under the threshold; None: not in time
    backlog: float  # events waiting when it was resumed
    consumed: float  # events consumed from resuming until caught up
    rate: float | None  # consumed / seconds: the catch-up rate in events/s
    peak_lag: float


def catch_up(samples: Sequence[LagSample], threshold: float, backlog: float, consumed0: float) -> CatchUp:
    """When md_service was caught up again: the first sample where its own lag *and* the feed-side
    lag are under ``threshold`` (its own figure alone can be stale right after a resume: it uses
    the high watermark of its last fetch)."""
    peak = max((s.md_lag or 0.0 for s in samples), default=0.0)
    peak = max(peak, max((s.outside_lag or 0.0 for s in samples), default=0.0))
    for s in samples:
        if s.md_lag is None or s.md_lag >= threshold:
            continue
        if s.outside_lag is not None and s.outside_lag >= threshold:
            continue
        consumed = (s.consumed or consumed0) - consumed0
        rate = consumed / s.t if s.t > 0 else None
        return CatchUp(s.t, backlog, consumed, rate, peak)
    return CatchUp(None, backlog, 0.0, None, peak)


def cpu_cores(before: Mapping[str, float], after: Mapping[str, float], seconds: float) -> dict[str, float]:
    """Cores each tier kept busy over ``seconds`` (1.0 = one core), from CPU seconds before and after."""
    if seconds <= 0:
        return {name: 0.0 for name in after}
    return {name: max(0.0, (after[name] - before.get(name, 0.0)) / seconds) for name in after}


def thirds(t_from: float, t_to: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """The first and last third of a window: does a figure grow while the load stays the same?"""
    third = (t_to - t_from) / 3
    return (t_from, t_from + third), (t_to - third, t_to)


def load_summary(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a load's final report says about the generator itself and the clients' integrity."""
    if report is None:
        return None
    keys = (
        "connections", "connected_at_end", "synced_at_end", "generator_saturated", "gaps",
        "checksum_failures", "verified_messages", "verifying_connections", "connect_failures", "refusals",
        "disconnects",
    )  # fmt: skip
    out = {key: report.get(key) for key in keys}
    out["stale"] = report.get("counters", {}).get("stale")
    out["cpu_share"] = [p.get("cpu_share") for p in report.get("per_process", [])]
    out["loop_lag_max_ms"] = [p.get("loop_lag_max_ms") for p in report.get("per_process", [])]
    return out


def gauge_summary(samples: Sequence[tuple[float | None, float | None]]) -> dict[str, float | int | None]:
    """A gateway's loop lag (s) and overloaded flag sampled over a window: mean and worst lag (ms),
    the share of samples in which it refused handshakes for load, and how many samples answered."""
    lags = [lag for lag, _ in samples if lag is not None]
    flags = [flag for _, flag in samples if flag is not None]
    return {
        "loop_lag_ms_mean": sum(lags) / len(lags) * 1000 if lags else None,
        "loop_lag_ms_max": max(lags) * 1000 if lags else None,
        "overloaded_share": sum(1 for f in flags if f) / len(flags) if flags else None,
        "samples": len(samples),
    }


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
