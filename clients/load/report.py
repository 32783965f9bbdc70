"""The load generator's figures: merged over processes, printed as a table and written as JSON."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clients.load.stats import ConnTimes, GroupTally, Latencies, LoadCounters, summarize

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
    synced_at_end: int = 0
    groups: dict[str, GroupTally] = field(default_factory=dict)
    loop_lag_max_ms: float = 0.0

    @property
    def cpu_share(self) -> float:
        return self.cpu_seconds / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class LoadReport:
    """Everything the run measured; :meth:`as_dict` is the JSON report."""

    urls: Sequence[str]
    connections: int
    pairs_per_connection: int | str
    duration: float
    workers: list[WorkerResult]
    latencies: Latencies
    verifying_connections: int
    started_at: float = field(default_factory=time.time)
    times: ConnTimes = field(default_factory=ConnTimes)

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
    def groups(self) -> dict[str, GroupTally]:
        merged: dict[str, GroupTally] = {}
        for worker in self.workers:
            for name, tally in worker.groups.items():
                merged.setdefault(name, GroupTally()).add(tally)
        return merged

    def per_connection(self, tally: GroupTally) -> dict[str, float | int | None]:
        """Frames each connection received per second, and deltas per frame: what one client pays."""
        frames_per_s = (
            tally.frames / tally.connections / self.elapsed if tally.connections and self.elapsed else 0.0
        )
        return {
            **tally.as_dict(),
            "frames_per_connection_per_s": round(frames_per_s, 3),
            "deltas_per_frame": round(tally.deltas / tally.frames, 3) if tally.frames else None,
        }

    @property
    def saturated(self) -> list[int]:
        """Workers that were (nearly) always busy: their figures are the generator's limit."""
        return [w.worker for w in self.workers if w.cpu_share >= SATURATED]

    def as_dict(self) -> dict[str, Any]:
        t = self.totals
        all_open = [w.all_open_after for w in self.workers]
        all_open_after = None if None in all_open else round(max(all_open, default=0.0), 3)  # type: ignore[type-var]
        everyone = GroupTally(self.connections, t.frames, t.deltas)
        return {
            "tool": "bookcast load",
            "report_version": 2,
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
            "frames_per_connection_per_s": self.per_connection(everyone)["frames_per_connection_per_s"],
            "deltas_per_frame": self.per_connection(everyone)["deltas_per_frame"],
            "latency_ms": {
                "exchange_to_receipt": summarize(self.latencies.exchange),
                "window_to_receipt": summarize(self.latencies.window),
                "handshake": summarize(self.times.handshake),
                "first_sync": summarize(self.times.first_sync),
                "resync_after_disconnect": summarize(self.times.resync),
                "subscribe_to_synced": summarize(self.times.subscribed),
            },
            "gaps": t.gaps,
            "epoch_changes": t.epoch_changes,
            "resyncs": t.resyncs,
            "disconnects": t.disconnects,
            "checksum_failures": t.checksum_failures,
            "verified_messages": t.verified,
            "verifying_connections": self.verifying_connections,
            "connect_failures": t.connect_failures,
            "connects": t.connects,
            "connects_per_s": round(self.connections / all_open_after, 1) if all_open_after else None,
            "refusals": t.refusals,
            "refusals_by_status": {"503": t.refusals_503, "429": t.refusals_429},
            "refused_then_connected": t.refused_then_connected,
            "connected_at_end": sum(w.connected_at_end for w in self.workers),
            "synced_at_end": sum(w.synced_at_end for w in self.workers),
            "all_connected_after_s": all_open_after,
            "resynced_after_disconnect": t.resynced,
            "since": {
                "subscribes": t.since_subscribes,
                "recovered": t.recovered_answers,
                "not_recovered": t.recovery_misses,
            },
            "groups": {name: self.per_connection(tally) for name, tally in sorted(self.groups.items())},
            "counters": t.as_dict(),
            "per_process": [
                {
                    "process": w.worker,
                    "connections": w.connections,
                    "frames_per_s": round(w.counters.frames / w.elapsed, 1) if w.elapsed else 0.0,
                    "messages_per_s": round(w.counters.messages / w.elapsed, 1) if w.elapsed else 0.0,
                    "cpu_share": round(w.cpu_share, 3),
                    "loop_lag_max_ms": w.loop_lag_max_ms,
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
            f"{len(self.workers)} process(es), {self.elapsed:.1f} s, {', '.join(self.urls)}"
            if isinstance(self.pairs_per_connection, int) or self.pairs_per_connection.isdigit()
            else f"bookcast load: {self.connections:,} connections, pairs: {self.pairs_per_connection}; "
            f"{len(self.workers)} process(es), {self.elapsed:.1f} s, {', '.join(self.urls)}",
            f"  frames   {d['frames']:>12,}  {d['frames_per_s']:>12,.0f}/s",
            f"  messages {d['messages']:>12,}  {d['messages_per_s']:>12,.0f}/s",
            f"  bytes    {d['bytes']:>12,}  {d['bytes_per_s'] / 1e6:>12,.2f} MB/s",
        ]
        for name, g in d["groups"].items():
            per_frame = "-" if g["deltas_per_frame"] is None else f"{g['deltas_per_frame']:.2f}"
            lines.append(
                f"  {name:<10} {g['connections']:>6,} connections: {g['frames_per_connection_per_s']:.2f} "
                f"frames/s each, {per_frame} deltas per frame"
            )
        lines.append(
            f"  latency (ms)       {'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'max':>8} {'count':>10}"
        )
        for label, key in (
            ("exchange -> recv", "exchange_to_receipt"),
            ("window   -> recv", "window_to_receipt"),
            ("handshake", "handshake"),
            ("first sync", "first_sync"),
            ("resync (drop)", "resync_after_disconnect"),
            ("subscribe->sync", "subscribe_to_synced"),
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
        connects = "" if d["connects_per_s"] is None else f" ({d['connects_per_s']:,.0f}/s while opening)"
        lines.append(
            f"  connected {d['connected_at_end']:,}/{self.connections:,} at the end{connects}, "
            f"{d['connect_failures']:,} failed attempts, {d['refusals']:,} refused for load "
            f"(503: {d['refusals_by_status']['503']:,}, 429: {d['refusals_by_status']['429']:,}; "
            f"{d['refused_then_connected']:,} of those connections got in later), "
            f"snapshots {d['snapshots']:,}, deltas {d['deltas']:,}"
        )
        since = d["since"]
        if since["subscribes"]:
            lines.append(
                f"  reconnects with since: {since['subscribes']:,} subscribes, {since['recovered']:,} "
                f"recovered, {since['not_recovered']:,} answered with snapshots; "
                f"{d['resynced_after_disconnect']:,} connections synced again after a drop"
            )
        busy = ", ".join(f"{w.cpu_share:.0%}" for w in self.workers)
        lag = ", ".join(f"{w.loop_lag_max_ms:,.0f}" for w in self.workers)
        lines.append(f"  generator CPU per process: {busy}; its event loop late by at most {lag} ms")
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
