"""One ``bookcast load`` of the realistic benchmark: the real command, as a child, followed live.

The benchmark drives clients exactly as a user would — the ``bookcast load`` command — and
reads what happened when from its ``--timeline`` (a JSON line per half second) and, once it
is stopped with SIGTERM, its ``--json`` report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from bookcast.processes import TierProcess
from clients.load.timeline import TimelineReader

ROUND_S = 0.5  # the load's --progress-interval: one timeline line per round
STOP_TIMEOUT = 45.0  # a clean stop closes every connection (3 s) and merges the workers' figures


class LoadRun:
    """``bookcast load …`` with a timeline and a JSON report in ``workdir``."""

    def __init__(self, name: str, workdir: Path, args: Sequence[str], connections: int) -> None:
        self.name = name
        self.connections = connections
        self.timeline_path = workdir / f"{name}.timeline.jsonl"
        self.report_path = workdir / f"{name}.json"
        argv = ["load", *args, "--timeline", str(self.timeline_path), "--json", str(self.report_path)]
        argv += ["--progress-interval", str(ROUND_S), "--quiet"]
        self.process = TierProcess(name, "bookcast", argv, env={"BOOKCAST_LOG_LEVEL": "WARNING"})
        self.reader = TimelineReader(self.timeline_path)
        self.started = 0.0
        self.report: dict[str, Any] | None = None

    def start(self) -> LoadRun:
        self.started = time.time()
        self.process.start()
        return self

    @property
    def rounds(self) -> list[dict[str, Any]]:
        self.reader.poll()
        return self.reader.rounds

    def last(self) -> dict[str, Any] | None:
        rounds = self.rounds
        return rounds[-1] if rounds else None

    def check(self) -> None:
        if not self.process.running and self.report is None:
            status = self.process.returncode
            raise RuntimeError(f"{self.name} exited (status {status}):\n{self.process.log_tail()}")

    def stop(self) -> dict[str, Any] | None:
        """SIGTERM: the load closes its connections, writes its report; returns it (None if it could not)."""
        if self.report is None:
            self.process.stop(timeout=STOP_TIMEOUT)
            try:
                self.report = orjson.loads(self.report_path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                self.report = None
        self.reader.poll()
        return self.report


def load_args(
    urls: Sequence[str], connections: int, *, pairs: str, pool: int, zipf: float | None = None,
    all_pairs: int = 0, ramp: float, sources: Sequence[str], duration: float, seed: int,
    processes: int, verify_sample: float,
) -> list[str]:  # fmt: skip
    """The command line of one load (see docs/clients.md for every flag)."""
    args = ["--url", ",".join(urls), "--connections", str(connections), "--pairs", pairs]
    args += ["--pool", str(pool), "--ramp", f"{ramp:g}", "--duration", f"{duration:g}", "--seed", str(seed)]
    args += ["--processes", str(processes), "--verify-sample", f"{verify_sample:g}"]
    if sources:
        args += ["--source", ",".join(sources)]
    if zipf is not None:
        args += ["--zipf", f"{zipf:g}"]
    if all_pairs:
        args += ["--all-pairs", str(all_pairs)]
    return args


def wait_until(
    runs: Sequence[LoadRun], done: Callable[[dict[str, Any]], bool], timeout: float, alive: Callable[[], None]
) -> bool:
    """Poll the loads' timelines until ``done`` holds for the last round of each, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive()
        for run in runs:
            run.check()
        lasts = [run.last() for run in runs]
        if all(last is not None and done(last) for last in lasts):
            return True
        time.sleep(0.1)
    return False
