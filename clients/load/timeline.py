"""``bookcast load --timeline FILE``: every round of the workers' reports as one JSON line.

Why: the final report sums the whole run, but a benchmark that kills a gateway or pauses
md_service while the load runs needs to know what the clients saw *when* — how many were
synced at each moment, the latencies of each round. One line per round (about every
``--progress-interval``), flushed as written, so a reader can follow the file live:

``t`` (wall clock, s), ``elapsed`` (s since the common start), ``open``, ``synced``
(connections whose every pair is synced), ``connections``, ``all_open_after`` (s from the
start until every connection had opened once, or null), ``synced_ns`` (wall clock, ns,
when the last connection became fully synced), ``loop_lag_ms`` (how late a worker's event
loop ran its timer this round, at worst: a generator that lags seconds measures itself),
``counters`` (totals so far),
``latencies`` and ``times`` (this round's HdrHistograms, encoded as in
:meth:`clients.latency.LatencyPair.encode`), ``groups`` (frames and deltas by group).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Any

import orjson

from clients.load.stats import ConnTimes, GroupTally, Latencies, LoadCounters

TIMELINE_VERSION = 1


def _text(encoded: dict[str, bytes]) -> dict[str, str]:
    return {name: blob.decode("ascii") for name, blob in encoded.items()}


class Timeline:
    """The open timeline file of one run (the parent process writes it)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    @classmethod
    def open(cls, path: str) -> Timeline:
        return cls(Path(path).open("wb"))

    def write(
        self, *, elapsed: float, open_now: int, synced: int, connections: int, synced_ns: int,
        counters: LoadCounters, latencies: Latencies, times: ConnTimes, groups: dict[str, GroupTally],
        all_open_after: float | None = None, loop_lag_ms: float = 0.0,
    ) -> None:  # fmt: skip
        line = {
            "v": TIMELINE_VERSION,
            "t": time.time(),
            "elapsed": round(elapsed, 3),
            "open": open_now,
            "synced": synced,
            "connections": connections,
            "all_open_after": None if all_open_after is None else round(all_open_after, 4),
            "synced_ns": synced_ns,
            "loop_lag_ms": loop_lag_ms,
            "counters": counters.as_dict(),
            "latencies": _text(latencies.encode()),
            "times": _text(times.encode()),
            "groups": {name: tally.as_dict() for name, tally in groups.items()},
        }
        self._out.write(orjson.dumps(line) + b"\n")
        self._out.flush()

    def close(self) -> None:
        self._out.close()


class TimelineReader:
    """Follows a timeline file as it grows: each :meth:`poll` returns the rounds written since."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rounds: list[dict[str, Any]] = []  # every round read so far
        self._offset = 0

    def poll(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next poll
        self._offset += end
        new = [orjson.loads(line) for line in data[:end].split(b"\n") if line.strip()]
        self.rounds += new
        return new


def read_rounds(path: str | Path) -> list[dict[str, Any]]:
    """Every complete line of a timeline."""
    reader = TimelineReader(path)
    reader.poll()
    return reader.rounds
