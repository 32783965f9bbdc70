"""The text of one ``bookcast watch`` frame, as plain lines (no terminal codes).

A pure function of the book view and the counters, so tests compare lines and the
watcher decides how to put them on screen (redrawn in place on a terminal, appended
otherwise). Asks are printed above bids, worst to best, so the spread sits in the middle
as on any trading screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

from clients.stats import ClientStats
from clients.view import BookView, PriceLevel


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """What the watcher knows besides the book: connection and update rate."""

    url: str
    connected: bool
    rate: float  # updates per second
    busy_status: int | None = None  # HTTP status of a busy gateway's refusal (503/429), while refused


def _ms(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.1f} ms"


def _p99(histogram: HdrHistogram) -> str:
    """`` (p99 x ms)`` over every delta so far; empty before the first one."""
    if not histogram.get_total_count():
        return ""
    return f" (p99 {histogram.get_value_at_percentile(99.0) / 1000:.1f} ms)"


def _status(view: BookView, info: FrameInfo) -> str:
    if not info.connected:
        return "RECONNECTING" if info.busy_status is None else f"GATEWAY BUSY ({info.busy_status})"
    if view.refusal is not None:
        return f"REFUSED ({view.refusal.code})"
    return "LIVE" if view.synced else "RESYNCING"


def render_frame(view: BookView, stats: ClientStats, info: FrameInfo, depth: int) -> list[str]:
    """The lines of one frame for ``view``'s top ``depth`` levels."""
    levels = view.top(depth)
    shown: list[PriceLevel] = [*levels.asks, *levels.bids]
    pw = max([len("price"), *(len(level.price) for level in shown)])
    qw = max([len("qty"), *(len(level.qty) for level in shown)])
    epoch = view.epoch or "-"
    lines = [
        f"{view.pair}  {_status(view, info)}  seq {view.seq}  epoch {epoch}  {info.url}",
        f"     {'price':>{pw}}  {'qty':>{qw}}",
    ]
    lines += [f"ask  {level.price:>{pw}}  {level.qty:>{qw}}" for level in reversed(levels.asks)]
    spread = view.spread()
    lines.append(f"     {'spread ' + spread if spread is not None else 'no spread':>{pw}}")
    lines += [f"bid  {level.price:>{pw}}  {level.qty:>{qw}}" for level in levels.bids]
    lines.append(
        f"rate {info.rate:.1f} upd/s  latency exchange->recv {_ms(stats.last_exchange_latency_ns)}"
        f"{_p99(stats.latency.exchange)}  window->recv {_ms(stats.last_window_latency_ns)}"
        f"{_p99(stats.latency.window)}"
    )
    lines.append(
        f"gaps {stats.gaps}  checksum failures {stats.checksum_failures}  resyncs {stats.resyncs}"
        f"  reconnects {stats.reconnects}  recoveries {stats.recoveries}  bad frames {stats.bad_frames}"
    )
    return lines
