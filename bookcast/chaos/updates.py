"""Every update each verifying client applied: (time, epoch, seq) per client and pair.

Compact (arrays, epochs interned) because a default run records about half a million
updates. Pure: the clients' ``on_update`` callbacks feed it from the event loop.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class _Track:
    times: array = field(default_factory=lambda: array("d"))
    seqs: array = field(default_factory=lambda: array("q"))
    epochs: array = field(default_factory=lambda: array("I"))


@dataclass
class UpdateLog:
    """Appends in time order per (client, pair); read back as ``(t, epoch, seq)``."""

    _tracks: dict[tuple[int, str], _Track] = field(default_factory=dict)
    _epoch_ids: dict[str, int] = field(default_factory=dict)
    _epoch_names: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, client: int, pair: str, epoch: str, seq: int, t: float) -> None:
        track = self._tracks.get((client, pair))
        if track is None:
            track = self._tracks[(client, pair)] = _Track()
        eid = self._epoch_ids.get(epoch)
        if eid is None:
            eid = self._epoch_ids[epoch] = len(self._epoch_names)
            self._epoch_names.append(epoch)
        track.times.append(t)
        track.seqs.append(seq)
        track.epochs.append(eid)
        self.count += 1

    def since(self, client: int, pair: str, t: float) -> Iterator[tuple[float, str, int]]:
        """The client's updates of ``pair`` at or after ``t``, oldest first."""
        track = self._tracks.get((client, pair))
        if track is None:
            return
        names = self._epoch_names
        for i in range(bisect.bisect_left(track.times, t), len(track.times)):
            yield track.times[i], names[track.epochs[i]], track.seqs[i]
