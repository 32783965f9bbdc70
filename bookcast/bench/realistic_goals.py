"""Issue 12's goals, each judged met or missed from the figures of one realistic run (pure).

A goal whose phase did not run is ``None`` (not measured), never met. A run smaller than the
goal's own set-up (``--quick``, fewer clients or pairs) is still judged, and says that it
was not at the goal's scale: its verdict is about that run, not about the goal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bookcast.bench.realistic_settings import Settings

FRAMES_PER_S_MAX = 10.0  # goal 1: 8 demo pairs, 100 ms windows
RAMP_P99_MS = 250.0  # goal 2
OVERLOAD_P99_MS = 500.0  # goal 3
OVERLOAD_RSS_GROWTH = 1.25  # goal 3, "nothing grows without bound": over the steady window
STORM_SYNCED_S = 10.0  # goal 4
CATCH_UP_S = 2.0  # goal 5
SYNTHETIC_SHARE = 0.8  # goal 6


@dataclass(frozen=True, slots=True)
class Verdict:
    goal: str  # a short name
    text: str  # the goal as the issue states it
    met: bool | None  # None: not measured in this run
    figure: str  # what was measured, in words and numbers
    at_scale: bool  # the run had (at least) the goal's set-up

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _num(value: float | None, spec: str = ",.2f") -> str:
    return "-" if value is None else format(value, spec)


def frames_per_window(s: Settings, steady: dict[str, Any] | None) -> Verdict:
    text = "a client on the 8 demo pairs gets at most 10 frames/s at 100 ms windows"
    group = (steady or {}).get("groups", {}).get("listed")
    if not group or group.get("frames_per_client_per_s") is None:
        return Verdict("frames", text, None, "not measured (no demo clients)", False)
    per_s = group["frames_per_client_per_s"]
    p99 = (steady or {}).get("latency_ms", {}).get("window_to_receipt", {}).get("p99_ms")
    figure = (
        f"{per_s:.1f} frames/s per demo client, {_num(group.get('deltas_per_frame'))} deltas per frame; "
        f"window -> receipt p99 {_ms(p99)} (a gateway that falls behind packs several windows into a "
        "frame, which also keeps this figure low: read it with the p99)"
    )
    return Verdict("frames", text, per_s <= FRAMES_PER_S_MAX, figure, s.pairs >= 8)


def ramp(s: Settings, ramp_: dict[str, Any] | None, steady: dict[str, Any] | None) -> Verdict:
    text = (
        "200 pairs, 2,000 clients x 3 pairs opened at 500/s from 4 addresses: all connected, "
        "0 connect failures, window -> receipt p99 under 250 ms"
    )
    if not ramp_ or not steady:
        return Verdict("ramp", text, None, "not measured", False)
    p99 = (steady.get("latency_ms_with_ramp") or {}).get("window_to_receipt", {}).get("p99_ms")
    connected, clients = ramp_["connected"], ramp_["clients"]
    failures, refusals = ramp_["connect_failures"], ramp_["refusals"]
    met = connected == clients and ramp_["synced"] == clients and failures == 0 and refusals == 0
    met = met and p99 is not None and p99 < RAMP_P99_MS
    figure = (
        f"{connected:,}/{clients:,} connected, {failures} connect failures, {refusals} refusals, "
        f"window -> receipt p99 {_ms(p99)} (ramp and steady window together)"
    )
    scale = s.pairs >= 200 and s.clients >= 2000 and s.ramp >= 500
    return Verdict("ramp", text, met, figure, scale)


def overload(s: Settings, result: dict[str, Any] | None) -> Verdict:
    text = (
        "2x what one gateway process can take: connected clients keep window -> receipt p99 under "
        "500 ms, the rest are refused with 503 and succeed on retry, nothing grows without bound"
    )
    if not result:
        return Verdict("overload", text, None, "not measured (phase not run)", False)
    p99 = result["latency_ms"]["window_to_receipt"]["p99_ms"]
    last = result.get("window_p99_last_third_ms")
    rss0, rss1 = result["gateway_rss_mib"]
    grew = rss1 / rss0 if rss0 else None
    everyone = result["connected"] == result["clients"]
    bounded = last is not None and last < OVERLOAD_P99_MS and grew is not None and grew <= OVERLOAD_RSS_GROWTH
    met = (
        p99 is not None and p99 < OVERLOAD_P99_MS and everyone and result["connect_failures"] == 0 and bounded
    )
    r = result
    figure = (
        f"{r['connected']:,}/{r['clients']:,} connected; {r['refusals_503']:,} refusals with 503, "
        f"{r['refused_then_connected']:,} clients got in after one; {r['connect_failures']} other failures; "
        f"p99 {_ms(p99)} (first third {_ms(result.get('window_p99_first_third_ms'))}, last {_ms(last)}); "
        f"gateway RSS {rss0:.0f} -> {rss1:.0f} MiB"
    )
    return Verdict("overload", text, met, figure, s.overload >= 2 * 2000)


def storm(s: Settings, result: dict[str, Any] | None) -> Verdict:
    text = "reconnect storm: 3,000 clients of a killed gateway all synced again within 10 s, 0 gone for good"
    if not result:
        return Verdict("storm", text, None, "not measured (phase not run)", False)
    after = result["synced_after_restart_s"]
    met = after is not None and after <= STORM_SYNCED_S and result["gone_for_good"] == 0
    figure = (
        f"{result['clients_of_killed_gateway']:,} clients: all synced again "
        f"{'never (within ' + format(s.storm_timeout, 'g') + ' s)' if after is None else f'{after:.2f} s'} "
        f"after the restart; {result['gone_for_good']} gone for good; {result['recovered']:,} recovered "
        f"with since, {result['not_recovered']:,} answered with snapshots"
    )
    return Verdict("storm", text, met, figure, result["clients_of_killed_gateway"] >= 3000)


def catch_up(s: Settings, result: dict[str, Any] | None) -> Verdict:
    text = "md_service paused 15 s under 3,000 events/s over 200 pairs: consumer lag under 1,000 within 2 s"
    if not result:
        return Verdict("catch-up", text, None, "not measured (phase not run)", False)
    after = result["caught_up_after_s"]
    met = after is not None and after <= CATCH_UP_S
    vs = result.get("catch_up_vs_live")
    figure = (
        f"backlog {result['backlog']:,.0f} events; lag under {result['threshold']:,} after "
        f"{'never' if after is None else f'{after:.2f} s'}; catch-up {_num(result['catch_up_rate'], ',.0f')} "
        f"events/s = {_num(vs, '.1f')}x the live {result['live_rate']:,.0f}/s"
    )
    scale = s.pause >= 15 and s.rate >= 3000 and s.pairs >= 200
    return Verdict("catch-up", text, met, figure, scale)


def per_core(s: Settings, steady: dict[str, Any] | None, synthetic: dict[str, Any] | None) -> Verdict:
    text = "real-pipeline pair-deltas/s per gateway core at least 80 % of the synthetic benchmark's"
    real = (steady or {}).get("gateway_deltas_per_core")
    fake = (synthetic or {}).get("deltas_per_core")
    if real is None or not fake:
        why = (synthetic or {}).get("error") or "phase not run"
        return Verdict("per-core", text, None, f"not measured ({why})", False)
    share = real / fake
    figure = (
        f"{real:,.0f} pair-deltas/s per gateway core vs {fake:,.0f} synthetic "
        f"({synthetic['clients']:,} clients x 8 pairs): {share:.0%}"
    )
    frames, fake_frames = (steady or {}).get("gateway_frames_per_core"), synthetic.get("frames_per_core")
    if frames and fake_frames:
        figure += f"; frames/s per core {frames:,.0f} vs {fake_frames:,.0f} ({frames / fake_frames:.0%})"
    return Verdict("per-core", text, share >= SYNTHETIC_SHARE, figure, s.clients >= 2000)


def judge(s: Settings, report: dict[str, Any]) -> list[Verdict]:
    """Every goal, in the issue's order."""
    steady = report.get("steady")
    return [
        frames_per_window(s, steady),
        ramp(s, report.get("ramp"), steady),
        overload(s, report.get("overload")),
        storm(s, report.get("storm")),
        catch_up(s, report.get("pause")),
        per_core(s, steady, report.get("synthetic")),
    ]
