"""Figures of one fan-out benchmark run: process CPU and memory from /proc, latency, the table."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median

from hdrh.histogram import HdrHistogram

from bookcast.bench.fanout_load import HIST_MAX_US

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far ((0, 0) if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS  # utime, stime


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 if it is gone)."""
    return sum(cpu_times(pid))


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy so far (from /proc/stat), to see what else ran meanwhile."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def merge_histograms(encoded: list[str]) -> HdrHistogram:
    hist = HdrHistogram(1, HIST_MAX_US, 3)
    for blob in encoded:
        hist.decode_and_add(blob)
    return hist


def percentiles_ms(hist: HdrHistogram) -> dict[str, float | None]:
    if hist.get_total_count() == 0:
        return {"p50": None, "p99": None, "p99.9": None, "max": None}
    return {
        "p50": hist.get_value_at_percentile(50) / 1000,
        "p99": hist.get_value_at_percentile(99) / 1000,
        "p99.9": hist.get_value_at_percentile(99.9) / 1000,
        "max": hist.get_max_value() / 1000,
    }


@dataclass
class RunResult:
    """One server kind, one client count, one repeat."""

    server: str
    clients: int
    window_ms: float
    seconds: float
    connected: int = 0
    deltas_per_s: float = 0.0
    frames_per_s: float = 0.0
    bytes_per_s: float = 0.0
    snapshots: int = 0
    window_latency_ms: dict[str, float | None] = field(default_factory=dict)
    exchange_latency_ms: dict[str, float | None] = field(default_factory=dict)
    server_cpu: float = 0.0  # cores (1.0 = one core busy)
    load_cpu: float = 0.0
    publisher_cpu: float = 0.0
    redis_cpu: float = 0.0
    other_cpu: float = 0.0  # cores busy with processes outside the benchmark (a shared machine)
    server_us_per_frame: float | None = None
    server_user_us_per_frame: float | None = None  # … of which in the process (Python, uvloop)
    kib_per_connection: float | None = None
    windows_published: int = 0
    late_windows: int = 0
    closed: int = 0
    notes: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def combine(results: list[RunResult]) -> RunResult:
    """The median of repeats (by field), keeping the first run's labels."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    out = RunResult(first.server, first.clients, first.window_ms, first.seconds)
    for name in (
        "connected", "deltas_per_s", "frames_per_s", "bytes_per_s", "snapshots", "server_cpu", "load_cpu",
        "publisher_cpu", "redis_cpu", "other_cpu", "windows_published", "late_windows", "closed",
    ):  # fmt: skip
        setattr(out, name, median(getattr(r, name) for r in results))
    for name in ("server_us_per_frame", "server_user_us_per_frame", "kib_per_connection"):
        values = [getattr(r, name) for r in results if getattr(r, name) is not None]
        setattr(out, name, median(values) if values else None)
    for name in ("window_latency_ms", "exchange_latency_ms"):
        merged: dict[str, float | None] = {}
        for key in ("p50", "p99", "p99.9", "max"):
            values = [getattr(r, name).get(key) for r in results if getattr(r, name).get(key) is not None]
            merged[key] = median(values) if values else None
        setattr(out, name, merged)
    out.notes = {"repeats": len(results)}
    return out


def table(results: list[RunResult]) -> str:
    head = (
        f"{'server':<8} {'clients':>7} {'win ms':>6} {'deltas/s':>10} {'frames/s':>9} {'MB/s':>6} "
        f"{'win p50':>7} {'p99':>7} {'p99.9':>7} {'xch p50':>7} {'p99':>7} "
        f"{'srv cpu':>7} {'load cpu':>8} {'µs/frame':>8} {'(user)':>6} {'KiB/conn':>8} {'snaps':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        w, x = r.window_latency_ms, r.exchange_latency_ms
        lines.append(
            f"{r.server:<8} {r.clients:>7} {r.window_ms:>6g} "
            f"{r.deltas_per_s:>10,.0f} {r.frames_per_s:>9,.0f} "
            f"{r.bytes_per_s / 1e6:>6.1f} {_fmt(w.get('p50')):>7} {_fmt(w.get('p99')):>7} "
            f"{_fmt(w.get('p99.9')):>7} {_fmt(x.get('p50')):>7} {_fmt(x.get('p99')):>7} "
            f"{r.server_cpu:>7.2f} {r.load_cpu:>8.2f} {_fmt(r.server_us_per_frame, '.2f'):>8} "
            f"{_fmt(r.server_user_us_per_frame, '.2f'):>6} "
            f"{_fmt(r.kib_per_connection):>8} {r.snapshots:>6}"
        )
    return "\n".join(lines)


def ratios(results: list[RunResult]) -> list[str]:
    """Gateway against the baselines of the same client count and window."""
    by_key = {(r.server, r.clients, r.window_ms): r for r in results}
    lines = []
    for (server, clients, window), gw in sorted(by_key.items(), key=lambda kv: (kv[0][2], kv[0][1])):
        if server != "gateway":
            continue
        for other in ("bare", "naive"):
            base = by_key.get((other, clients, window))
            if base is None or not base.frames_per_s:
                continue
            frames = gw.frames_per_s / base.frames_per_s
            line = (
                f"{clients:>6} clients, {window:g} ms: gateway/{other} frames/s {frames:.2f}"
                f", pair-deltas/s {gw.deltas_per_s / max(base.deltas_per_s, 1):.2f}"
            )
            if gw.server_us_per_frame and base.server_us_per_frame:
                line += f", server µs/frame {gw.server_us_per_frame:.2f} vs {base.server_us_per_frame:.2f}"
                line += f" (capacity ratio {base.server_us_per_frame / gw.server_us_per_frame:.2f})"
            lines.append(line)
    return lines


def window_cpu_bound_ms(r: RunResult, cores: int) -> float:
    """The least time a window's fan-out takes on average: server and load CPU per window, over the cores.

    Server and load share the machine, and every frame costs CPU on both sides (on loopback
    the sender's kernel also does the receiver's TCP work). Whatever the scheduling, the last
    client of a window reads its frame, on average, no sooner than this after the burst starts.
    """
    return (r.server_cpu + r.load_cpu) * r.window_ms / max(cores, 1)


def _mark(ok: bool) -> str:
    return "[met]   " if ok else "[MISSED]"


def goals(results: list[RunResult], saturation_window_ms: float, cores: int) -> list[str]:
    """The issue's three goals, each with the figure measured in this run."""
    gw = {(r.clients, r.window_ms): r for r in results if r.server == "gateway"}
    bare = {(r.clients, r.window_ms): r for r in results if r.server == "bare"}
    lines = []
    target = gw.get((5000, 100.0))
    if target is not None:
        p99 = target.window_latency_ms.get("p99")
        ok = p99 is not None and p99 < 50 and target.deltas_per_s >= 0.95 * 400_000
        lines.append(
            f"{_mark(ok)} 5,000 clients x 8 pairs at 100 ms: {target.deltas_per_s:,.0f} pair-deltas/s "
            f"(400,000 offered), window -> receipt p99 {_fmt(p99)} ms (goal < 50)"
        )
        lines.append(
            f"         this machine now: server + load use {target.server_cpu + target.load_cpu:.2f} cores, "
            f"so a window's fan-out takes on average at least {window_cpu_bound_ms(target, cores):.1f} ms "
            f"on {cores} cores"
        )
    keys = [
        max((k for k in gw if k in bare and k[1] != saturation_window_ms), default=None),
        max((k for k in gw if k in bare and k[1] == saturation_window_ms), default=None),
    ]
    for label, key in zip(("largest run", "saturation run"), keys, strict=True):
        if key is None:
            continue
        g, b = gw[key], bare[key]
        if not b.frames_per_s:
            continue
        ratio = g.frames_per_s / b.frames_per_s
        capacity = None
        if g.server_us_per_frame and b.server_us_per_frame:
            capacity = b.server_us_per_frame / g.server_us_per_frame
        lines.append(
            f"{_mark(ratio >= 0.85)} {label} ({key[0]:,} clients, {key[1]:g} ms): frames/s {ratio:.2f} of "
            f"bare's ({g.frames_per_s:,.0f} vs {b.frames_per_s:,.0f}; pair-deltas/s "
            f"{g.deltas_per_s / max(b.deltas_per_s, 1):.2f}x); server CPU per frame "
            f"{_fmt(g.server_us_per_frame, '.2f')} vs {_fmt(b.server_us_per_frame, '.2f')} µs, "
            f"capacity {_fmt(capacity, '.2f')}x bare's (goal >= 0.85)"
        )
    idle = [
        r.kib_per_connection for r in gw.values() if r.kib_per_connection is not None and r.clients >= 1000
    ]
    if idle:
        worst = max(idle)
        lines.append(f"{_mark(worst < 30)} memory per idle connection: up to {worst:.1f} KiB (goal < 30)")
    return lines


def cpu_split(results: list[RunResult], cores: int) -> list[str]:
    return [
        f"{r.server:<8} {r.clients:>6} clients {r.window_ms:>4g} ms: server {r.server_cpu:.2f}, "
        f"load {r.load_cpu:.2f}, publisher {r.publisher_cpu:.2f}, redis {r.redis_cpu:.2f}; "
        f"outside the benchmark {r.other_cpu:.2f} cores; a window's fan-out needs at least "
        f"{window_cpu_bound_ms(r, cores):.1f} ms"
        for r in results
    ]
