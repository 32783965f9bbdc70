"""Everything md_service published, as a recorder on Redis Pub/Sub saw it, and what it proves.

The strongest fencing check there is: a seq is a promise that its bytes are final, so the
same ``(pair, epoch, seq)`` published twice with different content (a zombie that woke
up, a restart that reused seqs) is the fault this log exists to catch. It also knows when
each pair published, for time to heal and for how long a pair was dark. Pure: the
recorder thread (:mod:`bookcast.chaos.recorder`) feeds it.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Conflict:
    """One ``(pair, epoch, seq)`` seen twice with different bytes."""

    pair: str
    epoch: str
    seq: int
    first_t: float
    again_t: float


@dataclass
class PublicationLog:
    """Per pair: publication times, and a digest per ``(epoch, seq)``; duplicates and holes."""

    times: dict[str, list[float]] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    same_duplicates: int = 0  # the same bytes twice: harmless, counted
    holes: int = 0  # a seq jump inside one epoch, as the recorder saw it
    messages: int = 0
    _seen: dict[tuple[str, str, int], tuple[int, float]] = field(default_factory=dict)
    _last: dict[str, tuple[str, int]] = field(default_factory=dict)
    epochs: dict[str, list[str]] = field(default_factory=dict)  # per pair, in order of appearance

    def add(self, pair: str, epoch: str, seq: int, digest: int, t: float) -> None:
        """Record one publication received at monotonic time ``t`` (calls come in time order)."""
        self.messages += 1
        key = (pair, epoch, seq)
        earlier = self._seen.get(key)
        if earlier is not None:
            if earlier[0] == digest:
                self.same_duplicates += 1
            else:
                self.conflicts.append(Conflict(pair, epoch, seq, earlier[1], t))
            return
        self._seen[key] = (digest, t)
        self.times.setdefault(pair, []).append(t)
        last = self._last.get(pair)
        if last is None or last[0] != epoch:
            self.epochs.setdefault(pair, []).append(epoch)
        elif seq > last[1] + 1:
            self.holes += 1
        if last is None or last[0] != epoch or seq > last[1]:
            self._last[pair] = (epoch, seq)

    def published_at(self, pair: str, epoch: str, seq: int) -> float | None:
        """When ``(epoch, seq)`` of ``pair`` was first seen, if it was."""
        seen = self._seen.get((pair, epoch, seq))
        return seen[1] if seen is not None else None

    def first_after(self, pair: str, t: float) -> float | None:
        """The first publication of ``pair`` at or after ``t``."""
        times = self.times.get(pair, [])
        i = bisect.bisect_left(times, t)
        return times[i] if i < len(times) else None

    def longest_dark(self, pair: str, start: float, end: float) -> tuple[float, float]:
        """The longest stretch within ``[start, end]`` with no publication of ``pair``: (length, from)."""
        times = self.times.get(pair, [])
        lo, hi = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
        marks = [start, *times[lo:hi], end]
        best, since = 0.0, start
        for before, after in itertools.pairwise(marks):
            if after - before > best:
                best, since = after - before, before
        return best, since
