"""The fan-out benchmark's verdict: the p99 goal, and the least time the machine allows for it."""

from __future__ import annotations

from bookcast.bench.fanout_report import RunResult, cpu_split, goals, window_cpu_bound_ms


def result(
    server: str = "gateway", p99: float = 45.0, server_cpu: float = 0.46, load_cpu: float = 0.46
) -> RunResult:
    r = RunResult(server, 5000, 100.0, 8.0, deltas_per_s=400_000, frames_per_s=50_000)
    r.window_latency_ms = {"p50": p99 / 2, "p99": p99, "p99.9": p99 + 5, "max": p99 + 9}
    r.server_cpu, r.load_cpu = server_cpu, load_cpu
    return r


def test_the_bound_is_server_and_load_cpu_per_window_over_the_cores() -> None:
    assert window_cpu_bound_ms(result(), cores=2) == 46.0
    assert window_cpu_bound_ms(result(server_cpu=0.3, load_cpu=0.5), cores=4) == 20.0


def test_the_p99_goal_is_judged_and_explained_by_the_bound() -> None:
    missed = goals([result(p99=64.3)], saturation_window_ms=5.0, cores=2)
    assert missed[0].startswith("[MISSED]") and "p99 64.3 ms" in missed[0]
    assert "0.92 cores" in missed[1] and "at least 46.0 ms on 2 cores" in missed[1]
    met = goals([result(p99=45.0, server_cpu=0.35, load_cpu=0.35)], saturation_window_ms=5.0, cores=2)
    assert met[0].startswith("[met]") and "at least 35.0 ms" in met[1]


def test_every_cpu_line_carries_its_bound() -> None:
    lines = cpu_split([result(), result("bare", server_cpu=0.6, load_cpu=0.56)], cores=2)
    assert lines[0].endswith("needs at least 46.0 ms") and lines[1].endswith("needs at least 58.0 ms")
