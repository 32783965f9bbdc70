"""Figures of ``bookcast bench scale``: one shard count's run, the table, the verdict."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

NEAR_FULL = 0.9  # a process (or the machine) this close to its cores counts as saturated
LINEAR = 0.8  # delivered(k)/delivered(1) at least this share of k counts as close to linear


def machine() -> dict[str, object]:
    """Core count (all and usable by us) and load average at the start."""
    load = os.getloadavg()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {
        "cores": usable,
        "cpu_count": os.cpu_count(),
        "loadavg_start": load,
        "loadavg_text": " ".join(f"{v:.2f}" for v in load),
    }


def _sum_lists(marks: list[dict], name: str) -> list[float]:
    """Element-wise sum over processes of a per-shard list."""
    out: list[float] = []
    for mark in marks:
        values = mark[name]
        out = [a + b for a, b in zip(out, values, strict=True)] if out else list(values)
    return out


@dataclass
class ShardRun:
    """One shard count: rates over the measured window, CPU in cores (1.0 = one core busy)."""

    shards: int
    subscribers: int
    seconds: float
    connections: int = 0
    partitions: list[int] = field(default_factory=list)  # per shard
    channels: list[int] = field(default_factory=list)  # per shard
    elapsed: float = 0.0
    published_per_s: float = 0.0
    delivered_per_s: float = 0.0
    delivered_bytes_per_s: float = 0.0
    published_per_shard_per_s: list[float] = field(default_factory=list)
    delivered_per_shard_per_s: list[float] = field(default_factory=list)
    valkey_cores: list[float] = field(default_factory=list)  # per shard
    pub_cores: list[float] = field(default_factory=list)  # per publisher process
    sub_cores: list[float] = field(default_factory=list)  # per subscriber process
    orchestrator_cores: float = 0.0
    machine_busy_cores: float = 0.0
    other_cores: float = 0.0  # busy with processes outside the benchmark (a shared machine)
    paused_fraction: float = 0.0  # of the publisher's time, waiting for subscribers' backlog
    max_backlog_bytes: int = 0
    published_total: int = 0
    receivers_total: int = 0  # the server's own count (SPUBLISH replies)
    delivered_total: int = 0
    lost: int = 0  # published_total x subscribers - delivered_total
    closed: int = 0
    errors: list[str] = field(default_factory=list)
    loadavg_before: tuple[float, ...] = ()
    loadavg_after: tuple[float, ...] = ()

    def measure(
        self, before: tuple[list[dict], list[dict], dict], after: tuple[list[dict], list[dict], dict]
    ) -> None:
        (pub0, sub0, cpu0), (pub1, sub1, cpu1) = before, after
        t = self.elapsed = float(cpu1["at"]) - float(cpu0["at"])
        published = [
            b - a for a, b in zip(_sum_lists(pub0, "published"), _sum_lists(pub1, "published"), strict=True)
        ]
        delivered = [
            b - a for a, b in zip(_sum_lists(sub0, "messages"), _sum_lists(sub1, "messages"), strict=True)
        ]
        received = sum(_sum_lists(sub1, "bytes")) - sum(_sum_lists(sub0, "bytes"))
        self.published_per_shard_per_s = [v / t for v in published]
        self.delivered_per_shard_per_s = [v / t for v in delivered]
        self.published_per_s = sum(published) / t
        self.delivered_per_s = sum(delivered) / t
        self.delivered_bytes_per_s = received / t
        for name, attr in (("valkey", "valkey_cores"), ("pub", "pub_cores"), ("sub", "sub_cores")):
            setattr(self, attr, [(b - a) / t for a, b in zip(cpu0[name], cpu1[name], strict=True)])
        self.orchestrator_cores = (cpu1["self"] - cpu0["self"]) / t
        self.machine_busy_cores = (cpu1["busy"] - cpu0["busy"]) / t
        ours = sum(self.valkey_cores) + sum(self.pub_cores) + sum(self.sub_cores) + self.orchestrator_cores
        self.other_cores = max(0.0, self.machine_busy_cores - ours)
        paused = sum(_sum_lists(pub1, "paused_s")) - sum(_sum_lists(pub0, "paused_s"))
        loops = max(1, len(pub1) * sum(1 for c in self.channels if c))
        self.paused_fraction = paused / (t * loops)

    def totals(self, finals: list[dict], sub_marks: list[dict]) -> None:
        """Everything published from start to stop against everything the subscribers received."""
        self.published_total = int(sum(_sum_lists(finals, "published")))
        self.receivers_total = int(sum(_sum_lists(finals, "receivers")))
        self.delivered_total = int(sum(_sum_lists(sub_marks, "messages")))
        self.lost = self.published_total * self.subscribers - self.delivered_total
        self.closed = sum(int(m["closed"]) for m in sub_marks)
        self.max_backlog_bytes = int(max(_sum_lists(finals, "max_backlog"), default=0))
        self.errors = [e for f in finals for e in f["errors"]]

    def ours_cores(self) -> float:
        return sum(self.valkey_cores) + sum(self.pub_cores) + sum(self.sub_cores) + self.orchestrator_cores

    def as_dict(self, base: ShardRun) -> dict[str, object]:
        out = asdict(self)
        out["ratio_vs_1"] = self.delivered_per_s / base.delivered_per_s if base.delivered_per_s else None
        out["valkey_cpu_seconds"] = [c * self.elapsed for c in self.valkey_cores]
        out["valkey_us_per_delivered"] = _us(sum(self.valkey_cores), self.delivered_per_s)
        out["subscriber_us_per_delivered"] = _us(sum(self.sub_cores), self.delivered_per_s)
        return out


def _us(cores: float, per_s: float) -> float | None:
    return cores / per_s * 1e6 if per_s else None


def _each(values: list[float], spec: str) -> str:
    return "/".join(format(v, spec) for v in values)


def table(runs: list[ShardRun]) -> str:
    base = runs[0].delivered_per_s or 1.0
    head = (
        f"{'k':>2} {'conns':>5} {'published/s':>12} {'delivered/s':>12} {'x k=1':>6} "
        f"{'delivered/s per shard':>26} {'valkey cores':>15} {'valkey µs/msg':>13} {'subs':>9} "
        f"{'pub':>5} {'other':>5} {'busy':>5} {'paused':>6} {'lost':>5}"
    )
    lines = [head, "-" * len(head)]
    for r in runs:
        lines.append(
            f"{r.shards:>2} {r.connections:>5} {r.published_per_s:>12,.0f} {r.delivered_per_s:>12,.0f} "
            f"{r.delivered_per_s / base:>6.2f} {_each(r.delivered_per_shard_per_s, ',.0f'):>26} "
            f"{_each(r.valkey_cores, '.2f'):>15} {_us(sum(r.valkey_cores), r.delivered_per_s) or 0:>13.3f} "
            f"{_each(r.sub_cores, '.2f'):>9} {sum(r.pub_cores):>5.2f} {r.other_cores:>5.2f} "
            f"{r.machine_busy_cores:>5.2f} {r.paused_fraction:>6.0%} {r.lost:>5}"
        )
    lines.append(
        "(cores: 1.00 = one core busy; busy = the whole machine; paused = publisher waiting for the "
        "subscribers' backlog; lost = published x subscribers - delivered, whole run)"
    )
    return "\n".join(lines)


def _split(run: ShardRun) -> str:
    return (
        f"valkey {sum(run.valkey_cores):.2f}, subscribers {sum(run.sub_cores):.2f}, "
        f"publisher {sum(run.pub_cores):.2f}, other processes {run.other_cores:.2f}"
    )


def _why(run: ShardRun, cores: int) -> str:
    """What holds this run back, from its CPU figures."""
    parts = []
    if run.machine_busy_cores >= NEAR_FULL * cores:
        parts.append(f"the machine's {cores} cores are busy ({run.machine_busy_cores:.2f}: {_split(run)})")
    active = [c for c, n in zip(run.valkey_cores, run.channels, strict=True) if n]
    if active and min(active) >= NEAR_FULL:
        parts.append("every primary is at a full core (Valkey runs commands on one thread)")
    elif active and max(active) >= NEAR_FULL:
        parts.append(f"the busiest primary is at {max(active):.2f} of a core")
    if run.sub_cores and max(run.sub_cores) >= NEAR_FULL:
        parts.append(f"a subscriber process is at {max(run.sub_cores):.2f} of a core")
    if run.paused_fraction >= 0.2:
        parts.append(f"the publisher waited {run.paused_fraction:.0%} of its time for the subscribers")
    if run.pub_cores and max(run.pub_cores) >= NEAR_FULL:
        parts.append(f"the publisher is at {max(run.pub_cores):.2f} of a core")
    if not parts:
        busiest = max(active, default=0.0)
        parts.append(
            f"nothing saturated: busiest primary {busiest:.2f} of a core, machine "
            f"{run.machine_busy_cores:.2f} of {cores} busy ({_split(run)})"
        )
    return "; ".join(parts)


def verdict(runs: list[ShardRun], cores: int) -> list[str]:
    """Per run the growth and what limits it, then where the cores stop the scaling."""
    base = runs[0]
    lines = []
    for r in runs:
        ratio = r.delivered_per_s / base.delivered_per_s if base.delivered_per_s else 0.0
        ideal = r.shards / base.shards
        lines.append(
            f"k={r.shards}: x{ratio:.2f} of ideal x{ideal:g} ({ratio / ideal:.0%}) — {_why(r, cores)}"
        )
    other = max(r.other_cores for r in runs)
    if other >= 0.1 * cores:
        lines.append(
            f"note: other processes on this machine used up to {other:.2f} of its {cores} cores during "
            f"the runs (load average {runs[0].loadavg_before[0]:.2f} -> {runs[-1].loadavg_after[0]:.2f}): "
            "every figure is below what an idle machine gives"
        )
    spent = base.ours_cores()
    if base.delivered_per_s and spent:
        # What the machine could deliver at the base run's CPU cost per delivered message.
        free = max(cores - base.other_cores, 0.0)
        lines.append(
            f"cost at k={base.shards}: {spent:.2f} cores for {base.delivered_per_s:,.0f} msg/s "
            f"(valkey {_us(sum(base.valkey_cores), base.delivered_per_s):.3f} µs, subscribers "
            f"{_us(sum(base.sub_cores), base.delivered_per_s):.3f} µs, publisher "
            f"{_us(sum(base.pub_cores), base.delivered_per_s):.3f} µs per delivered message): "
            f"{cores} cores carry at most ~x{cores / spent:.2f} of it whatever the shard count "
            f"(~x{free / spent:.2f} with the other processes' {base.other_cores:.2f})"
        )
    short = [
        r for r in runs[1:] if r.delivered_per_s < LINEAR * base.delivered_per_s * r.shards / base.shards
    ]
    stop = short[0] if short and base.delivered_per_s else None
    full = next((r for r in runs if r.machine_busy_cores >= NEAR_FULL * cores), None)
    growth = ", ".join(f"x{r.delivered_per_s / (base.delivered_per_s or 1):.2f}" for r in runs)
    head = f"verdict: delivered/s grows {growth} with {', '.join(str(r.shards) for r in runs)} primaries"
    if stop is None:
        tail = f"close to linear (each at least {LINEAR:.0%} of ideal) up to k={runs[-1].shards}"
    else:
        tail = f"the growth stops at k={stop.shards} ({_why(stop, cores)})"
    if full is not None:
        tail += (
            f"; the cores ran out at k={full.shards} ({full.machine_busy_cores:.2f} of {cores} busy): "
            "from there a further shard only shares the same cores"
        )
    lines.append(f"{head}: {tail}")
    return lines
