"""What else the (shared) machine is doing: load averages and the busiest processes.

The report prints it beside the figures, because time to heal on a 2-core machine shared
with other people's benchmarks says as much about the machine as about the tiers.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def _cpu_ticks() -> dict[int, tuple[str, int]]:
    """Per pid: command name and CPU ticks used so far (user + system)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        out[int(entry.name)] = (name, int(fields[11]) + int(fields[12]))
    return out


def busiest(seconds: float = 1.0, top: int = 6, exclude: frozenset[int] = frozenset()) -> list[str]:
    """The processes that used the most CPU over the next ``seconds`` ("name pid 43%")."""
    if not Path("/proc/self/stat").exists():
        return []
    hz = os.sysconf("SC_CLK_TCK")
    before = _cpu_ticks()
    time.sleep(seconds)
    after = _cpu_ticks()
    used = []
    for pid, (name, ticks) in after.items():
        if pid in exclude or pid not in before:
            continue
        share = (ticks - before[pid][1]) / hz / seconds * 100
        if share >= 1.0:
            used.append((share, f"{name} {pid} {share:.0f}%"))
    return [text for _, text in sorted(used, reverse=True)[:top]]


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
