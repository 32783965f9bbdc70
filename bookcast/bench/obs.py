"""``bookcast bench obs``: what observability costs on the hot paths, against the work already there.

Per delta, the gateway's latency hook (read ``ts``/``xts`` from the bytes, two histogram
records) is compared with the decode every delta already gets in the replica; md_service's
window hook with encoding the delta it times. Per scrape / per second, the exporters and
the dashboard's combination of statuses are timed at a realistic size. Medians of
``--repeats`` runs; this machine is shared, so read the ratios more than the microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import orjson

from gateway.config import GatewayConfig
from gateway.dashboard.aggregate import combine, gateway_status
from gateway.hub import Hub
from gateway.metrics import GatewayMetrics, LatencyListener
from md_service.counters import WindowLatency
from mdcore.codec import decode_delta, encode_delta
from mdcore.latency import LatencyHistogram
from mdcore.messages import Delta
from mdcore.status_bus import latency_block


def _per_call_us(call: Callable[[], object], seconds: float) -> float:
    """Microseconds per call, calling in batches until ``seconds`` have passed."""
    n, batch = 0, 200
    started = time.perf_counter()
    while True:
        for _ in range(batch):
            call()
        n += batch
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return elapsed / n * 1e6


def _median(call: Callable[[], object], seconds: float, repeats: int) -> float:
    return statistics.median(_per_call_us(call, seconds) for _ in range(repeats))


def _delta(levels: int) -> Delta:
    now = time.time_ns()
    bids = [[f"{64000 - i * 0.5:.2f}", "1.25000"] for i in range(levels)]
    return Delta("BTC-USD", "e1-ab", 42, now - 3_000_000, now - 80_000_000, bids, [], 12345)


def _statuses(gateways: int, loads: int) -> tuple[list[dict], list[dict], list[dict]]:
    hist = LatencyHistogram()
    for v in range(1, 3000):
        hist.record(v * 37)
    block = latency_block(hist)
    counters = {"frames_out": 10_000, "redis_messages": 500}
    gws = [
        gateway_status(
            f"gw-{i}",
            0,
            1.0,
            counters,
            {},
            {"connections": 5000, "redis_up": True},
            {"close_to_gateway": hist, "exchange_to_gateway": hist},
        )
        for i in range(gateways)
    ]
    md = [
        {
            "v": 1,
            "kind": "md",
            "id": "md",
            "rates": {"events_per_s": 1.0},
            "latency": {"exchange_to_close": block},
        }
    ]
    load = [
        {"v": 1, "kind": "load", "id": f"l{i}", "latency": {"close_to_client": block}} for i in range(loads)
    ]
    return gws, md, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bookcast bench obs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="per measurement (default 0.5)")
    parser.add_argument("--repeats", type=int, default=5, help="medians over this many runs (default 5)")
    parser.add_argument("--levels", type=int, default=5, help="levels per delta (default 5)")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = parser.parse_args(argv)
    s, r = args.seconds, args.repeats
    delta = _delta(args.levels)
    raw = encode_delta(delta)
    listener = LatencyListener()
    window = WindowLatency()
    outputs = [SimpleNamespace(delta=raw)]
    acked = time.time_ns()
    figures: dict[str, float] = {
        "gateway_decode_us": _median(lambda: decode_delta(raw), s, r),
        "gateway_latency_hook_us": _median(lambda: listener.on_delta("BTC-USD", raw), s, r),
        "md_encode_us": _median(lambda: encode_delta(delta), s, r),
        "md_window_hook_us": _median(lambda: window.written(outputs, acked), s, r),  # type: ignore[arg-type]
    }
    hub = Hub(GatewayConfig(redis_url="redis://127.0.0.1:1/0"))
    metrics = GatewayMetrics(hub, listener)
    figures["gateway_scrape_ms"] = _median(metrics.render, s, r) / 1000
    gws, md, load = _statuses(gateways=8, loads=4)
    figures["dashboard_combine_ms"] = _median(lambda: combine(0, gws, md, load), s, r) / 1000
    figures["hook_vs_decode"] = figures["gateway_latency_hook_us"] / figures["gateway_decode_us"]
    figures["md_hook_vs_encode"] = figures["md_window_hook_us"] / figures["md_encode_us"]
    print(f"bookcast bench obs: medians of {r} x {s:g} s, deltas of {args.levels} levels")
    f = figures
    print(f"  gateway, per delta: decode (already there) {f['gateway_decode_us']:.2f} us, latency hook "
          f"{f['gateway_latency_hook_us']:.2f} us ({f['hook_vs_decode']:.2f}x the decode)")  # fmt: skip
    print(f"  md_service, per delta: encode (already there) {f['md_encode_us']:.2f} us, window hook "
          f"{f['md_window_hook_us']:.2f} us ({f['md_hook_vs_encode']:.2f}x the encode)")  # fmt: skip
    print(
        f"  gateway /metrics render {figures['gateway_scrape_ms']:.2f} ms; "
        f"dashboard message from 8 gateways + 4 load generators {figures['dashboard_combine_ms']:.2f} ms"
    )
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
