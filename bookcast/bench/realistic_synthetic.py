"""Phase 5 of ``bookcast bench realistic``: the synthetic ``bench fanout`` at the same client count.

Run after the stack has stopped, so that it has the machine to itself: its pair-deltas per
gateway core put the realistic figures next to the synthetic ones. See
:mod:`bookcast.bench.realistic_phases`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bookcast.bench.realistic_settings import Settings
from bookcast.processes import TierProcess


def synthetic(settings: Settings, clients: int, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """``bookcast bench fanout`` (its gateway pass only) at ``clients``: pair-deltas per gateway core."""
    path = workdir / "synthetic.json"
    args = ["bench", "fanout", "--clients", str(clients), "--servers", "gateway", "--seconds",
            f"{settings.synthetic_seconds:g}", "--saturation-clients", "0", "--json", str(path)]  # fmt: skip
    say(f"synthetic: bookcast bench fanout --clients {clients} --servers gateway … (no other stack running)")
    proc = TierProcess("synthetic", "bookcast", args)
    proc.start()
    deadline = time.monotonic() + 120 + 3 * settings.synthetic_seconds
    while proc.running and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.stop(timeout=10.0)
    try:
        runs = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {"clients": clients, "error": f"bench fanout wrote no report (status {proc.returncode})"}
    run = next((r for r in runs if r.get("server") == "gateway"), None)
    if run is None:
        return {"clients": clients, "error": "no gateway run in the bench fanout report"}
    cores = run.get("server_cpu") or 0.0
    return {
        "clients": clients,
        "pairs_per_client": 8,
        "seconds": settings.synthetic_seconds,
        "deltas_per_s": run.get("deltas_per_s"),
        "frames_per_s": run.get("frames_per_s"),
        "gateway_cores": cores,
        "deltas_per_core": run["deltas_per_s"] / cores if cores else None,
        "frames_per_core": run["frames_per_s"] / cores if cores else None,
        "window_p99_ms": (run.get("window_latency_ms") or {}).get("p99"),
    }
