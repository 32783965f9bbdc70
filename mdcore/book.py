"""A full-depth order book for one pair, in integer units, on ``sortedcontainers``.

Sides are the wire letters ``"b"`` (bids) and ``"a"`` (asks). Both sides iterate best
first: bids from the highest price down, asks from the lowest up. A level with
quantity 0 does not exist; setting a level to 0 removes it (a no-op if absent).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from operator import neg

from sortedcontainers import SortedDict

BID = "b"
ASK = "a"
SIDES = (BID, ASK)

Level = tuple[int, int]  # (price units, qty units)

_dict_setitem = dict.__setitem__  # SortedDict is a dict; updating an existing key needs no re-sort


class OrderBook:
    """Price levels of both sides; the only mutation is :meth:`set_level`."""

    __slots__ = ("_asks", "_bids")

    def __init__(self) -> None:
        self._bids: SortedDict = SortedDict(neg)
        self._asks: SortedDict = SortedDict()

    def side(self, side: str) -> SortedDict:
        if side == BID:
            return self._bids
        if side == ASK:
            return self._asks
        raise ValueError(f"side must be 'b' or 'a', not {side!r}")

    def set_level(self, side: str, price: int, qty: int) -> int:
        """Set ``price`` on ``side`` to ``qty`` (0 removes it); return the previous qty."""
        # The hot path of md_service: no helper call, and a plain dict write when the level
        # exists (SortedDict only needs to hear about new and removed keys).
        if side == BID:
            levels = self._bids
        elif side == ASK:
            levels = self._asks
        else:
            raise ValueError(f"side must be 'b' or 'a', not {side!r}")
        if qty:
            prior = levels.get(price, 0)
            if prior:
                _dict_setitem(levels, price, qty)
            else:
                levels[price] = qty
            return prior
        return levels.pop(price, 0)

    def qty(self, side: str, price: int) -> int:
        return self.side(side).get(price, 0)

    def top(self, side: str, depth: int | None = None) -> list[Level]:
        """Best-first levels of one side, at most ``depth`` of them (all if None)."""
        levels = self.side(side)
        if depth is None or depth >= len(levels):
            return list(levels.items())
        # Iterating keys is C-speed and lookups are plain dict ones; indexing a SortedDict is not.
        return [(price, levels[price]) for price in islice(levels, depth)]

    def iter_side(self, side: str) -> Iterator[Level]:
        return iter(self.side(side).items())

    def depth(self, side: str) -> int:
        return len(self.side(side))

    def best_bid(self) -> Level | None:
        return self._bids.peekitem(0) if self._bids else None

    def best_ask(self) -> Level | None:
        return self._asks.peekitem(0) if self._asks else None

    def is_crossed(self) -> bool:
        """True if the best bid is at or above the best ask (an impossible book)."""
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid[0] >= ask[0]

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()

    def replace(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Clear, then add every level: a snapshot goes through the same path as a delta."""
        self.clear()
        for price, qty in bids:
            self.set_level(BID, price, qty)
        for price, qty in asks:
            self.set_level(ASK, price, qty)

    def copy(self) -> OrderBook:
        clone = OrderBook()
        clone._bids.update(self._bids)
        clone._asks.update(self._asks)
        return clone

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrderBook):
            return NotImplemented
        return dict(self._bids) == dict(other._bids) and dict(self._asks) == dict(other._asks)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"OrderBook(bids={self.top(BID, 3)}…, asks={self.top(ASK, 3)}…)"
