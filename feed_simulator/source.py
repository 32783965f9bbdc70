"""The stream of encoded exchange events over all pairs: markets + pair choice + xseq.

Pure like the markets it drives: the exchange time is an argument, so a test can run the
whole feed without Kafka or a clock and check what a consumer would receive.

Known limitation: xseq starts at 1 for every pair of every run. A simulator restarted on
an existing topic publishes new books from xseq 1 after the old ones, and a consumer that
remembers the old run's xseq (md_service skips xseq <= its last one as redeliveries) drops
the new run's events until xseq passes the old mark. Embedded servers (`bookcast up`) start
empty, so the demo never meets this; how to recover is decided by a later issue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from feed_simulator.market import SimulatedMarket
from feed_simulator.pacing import PairPicker, RoundRobin
from mdcore.events import encode_event


class EncodedEvent(NamedTuple):
    """One event ready to produce: Kafka key and value, and its number of level changes."""

    pair: str
    key: bytes
    value: bytes
    changes: int
    xseq: int


class EventSource:
    """Draws events from per-pair markets in the order a :class:`PairPicker` dictates."""

    def __init__(self, markets: Sequence[SimulatedMarket], picker: PairPicker | None = None) -> None:
        if not markets:
            raise ValueError("need at least one market")
        self._markets = list(markets)
        self._picker = picker or RoundRobin(len(self._markets))
        self._keys = [m.pair.encode() for m in self._markets]
        self._xseq = [0] * len(self._markets)

    @property
    def pairs(self) -> list[str]:
        return [m.pair for m in self._markets]

    @property
    def markets(self) -> list[SimulatedMarket]:
        return list(self._markets)

    def last_xseq(self) -> dict[str, int]:
        """The xseq of the last event generated per pair (0 if none yet)."""
        return {m.pair: seq for m, seq in zip(self._markets, self._xseq, strict=True)}

    def next_event(self, xts: int) -> EncodedEvent:
        """Generate the next event, stamped with exchange time ``xts`` (ns)."""
        index = self._picker.next_index()
        market = self._markets[index]
        xseq = self._xseq[index] = self._xseq[index] + 1
        changes = market.next_wire_changes()
        pair = market.pair
        value = encode_event(pair, xseq, xts, changes)
        return EncodedEvent(pair, self._keys[index], value, len(changes), xseq)
