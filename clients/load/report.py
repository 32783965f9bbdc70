"""The load generator's figures: merged over processes, printed as a table and written as JSON."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clients.load.stats import Latencies, LoadCounters, summarize

SATURATED = 0.9  # a worker busier than this share of one CPU may itself be the bottleneck


@dataclass
class WorkerResult:
    """The final figures of one worker process."""

    worker: int
    counters: LoadCounters
    elapsed: float
    cpu_seconds: float
    connections: int
    connected_at_end: int
    all_open_after: float | None

    @property
    def cpu_share(self) -> float:
        return self.cpu_seconds / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class LoadReport:
    """Everything the run measured; :meth:`as_dict` is the JSON report."""

    urls: Sequence[str]
    connections: int
    pairs_per_connection: int
    duration: float
    workers: list[WorkerResult]
    latencies: Latencies
    verifying_connections: int
    started_at: float = field(default_factory=time.time)

    @property
    def totals(self) -> LoadCounters:
        total = LoadCounters()
        for worker in self.workers:
            total.add(worker.counters)
        return total

    @property
    def elapsed(self) -> float:
        return max((w.elapsed for w in self.workers), default=0.0)

    def rate(self, value: int) -> float:
        return value / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def saturated(self) -> list[int]:
        """Workers that were (nearly) always busy: their figures are the generator's limit."""
        return [w.worker for w in self.workers if w.cpu_share >= SATURATED]

    def as_dict(self) -> dict[str, Any]:
        t = self.totals
        all_open = [w.all_open_after for w in self.workers]
        return {
            "tool": "bookcast load",
            "report_version": 1,
            "started_at": self.started_at,
            "urls": list(self.urls),
            "connections": self.connections,
            "pairs_per_connection": self.pairs_per_connection,
            "processes": len(self.workers),
            "duration": self.duration,
            "elapsed": round(self.elapsed, 3),
            "frames": t.frames,
            "frames_per_s": round(self.rate(t.frames), 1),
            "messages": t.messages,
            "messages_per_s": round(self.rate(t.messages), 1),
            "bytes": t.bytes,
            "bytes_per_s": round(self.rate(t.bytes), 1),
            "deltas": t.deltas,
            "snapshots": t.snapshots,
            "latency_ms": {
                "exchange_to_receipt": summarize(self.latencies.exchange),
                "window_to_receipt": summarize(self.latencies.window),
            },
            "gaps": t.gaps,
            "epoch_changes": t.epoch_changes,
            "resyncs": t.resyncs,
            "disconnects": t.disconnects,
            "checksum_failures": t.checksum_failures,
            "verified_messages": t.verified,
            "verifying_connections": self.verifying_connections,
            "connect_failures": t.connect_failures,
            "connected_at_end": sum(w.connected_at_end for w in self.workers),
            "all_connected_after_s": None if None in all_open else round(max(all_open, default=0.0), 3),  # type: ignore[type-var]
            "counters": t.as_dict(),
            "per_process": [
                {
                    "process": w.worker,
                    "connections": w.connections,
                    "frames_per_s": round(w.counters.frames / w.elapsed, 1) if w.elapsed else 0.0,
                    "messages_per_s": round(w.counters.messages / w.elapsed, 1) if w.elapsed else 0.0,
                    "cpu_share": round(w.cpu_share, 3),
                }
                for w in self.workers
            ],
            "generator_saturated": bool(self.saturated),
        }

    def table(self) -> list[str]:
        """The human summary printed at the end."""
        d = self.as_dict()
        lines = [
            f"bookcast load: {self.connections:,} connections x {self.pairs_per_connection} pairs over "
            f"{len(self.workers)} process(es), {self.elapsed:.1f} s, {', '.join(self.urls)}",
            f"  frames   {d['frames']:>12,}  {d['frames_per_s']:>12,.0f}/s",
            f"  messages {d['messages']:>12,}  {d['messages_per_s']:>12,.0f}/s",
            f"  bytes    {d['bytes']:>12,}  {d['bytes_per_s'] / 1e6:>12,.2f} MB/s",
            f"  latency (ms)       {'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'max':>8} {'count':>10}",
        ]
        for label, key in (
            ("exchange -> recv", "exchange_to_receipt"),
            ("window   -> recv", "window_to_receipt"),
        ):
            s = d["latency_ms"][key]
            if not s["count"]:
                lines.append(f"  {label:<18} {'-':>8} {'-':>8} {'-':>8} {'-':>8} {'-':>8} {0:>10}")
                continue
            lines.append(
                f"  {label:<18} {s['p50_ms']:>8.2f} {s['p90_ms']:>8.2f} {s['p99_ms']:>8.2f} "
                f"{s['p99.9_ms']:>8.2f} {s['max_ms']:>8.2f} {s['count']:>10,}"
            )
        lines.append(
            f"  gaps {d['gaps']}  epoch changes {d['epoch_changes']}  resyncs {d['resyncs']}  "
            f"disconnects {d['disconnects']}  checksum failures {d['checksum_failures']} "
            f"({d['verified_messages']:,} messages verified on {d['verifying_connections']} connections)"
        )
        lines.append(
            f"  connected {d['connected_at_end']:,}/{self.connections:,} at the end, "
            f"{d['connect_failures']:,} failed attempts, snapshots {d['snapshots']:,}, deltas {d['deltas']:,}"
        )
        busy = ", ".join(f"{w.cpu_share:.0%}" for w in self.workers)
        lines.append(f"  generator CPU per process: {busy}")
        if self.saturated:
            lines.append(
                "  WARNING: a load process was busy nearly all the time, so these figures may be the "
                "generator's limit, not the gateway's: add --processes (or machines)"
            )
        return lines


def progress_line(
    elapsed: float, open_now: int, connections: int, counters: LoadCounters, last: LoadCounters,
    span: float, interval: Latencies,
) -> str:  # fmt: skip
    """One line of progress over the last ``span`` seconds."""
    frames = (counters.frames - last.frames) / span if span > 0 else 0.0
    mbytes = (counters.bytes - last.bytes) / span / 1e6 if span > 0 else 0.0
    window, exchange = summarize(interval.window), summarize(interval.exchange)
    p99 = (
        f"p99 window {window['p99_ms']:.1f} ms, exchange {exchange['p99_ms']:.1f} ms"
        if window["count"]
        else "no deltas"
    )
    return (
        f"load {elapsed:5.1f}s: {open_now:,}/{connections:,} open  {frames:,.0f} frames/s  "
        f"{mbytes:.2f} MB/s  "
        f"{p99}  gaps {counters.gaps}  resyncs {counters.resyncs}  disconnects {counters.disconnects}"
    )
