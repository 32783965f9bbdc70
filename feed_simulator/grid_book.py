"""The simulated market's book: two sides of levels on an integer price grid, and net changes.

Why not the sorted :class:`~mdcore.book.OrderBook`: this is the feed's hot path (hundreds of
thousands of changes a second), and every action of :class:`~feed_simulator.market.SimulatedMarket`
only ever needs the best level, the worst one and a level near a given distance, which the
grid gives by index arithmetic. :attr:`GridBook.book` builds an ``OrderBook`` on demand for
checks.

Why the book keeps the quantities from before the event: an event is several actions, and
the feed publishes only their *net* result (:meth:`GridBook._net`), removals first, so a
consumer checking the book after every single change never sees it crossed.
"""

from __future__ import annotations

from mdcore.book import ASK, BID, OrderBook

SIDES = (BID, ASK)  # side number -> wire letter
OUTWARD = (-1, 1)  # side number -> direction of the grid index away from the mid
GridChange = tuple[int, int, int]  # (side number, grid index, qty units; 0 removes)


class GridBook:
    """Per side, a dict from grid index to quantity, with its best and worst index kept.

    Price = index * ``step``. Bids sit at low indices, asks at high ones; which indices a
    side may use is the market's rule, not the book's.
    """

    def __init__(self, step: int) -> None:
        self.step = step  # price units per grid index
        self._levels: tuple[dict[int, int], dict[int, int]] = ({}, {})  # side -> {index: qty units}
        self._best = [0, 0]  # per side, the best index (meaningless while the side is empty)
        self._worst = [0, 0]
        self._touched: dict[int, int] = {}  # 2*index+side -> qty before the event

    @property
    def book(self) -> OrderBook:
        """A copy of the current book as an :class:`OrderBook` (built on each call: for checks)."""
        book, step = OrderBook(), self.step
        for s, levels in enumerate(self._levels):
            for index, qty in levels.items():
                book.set_level(SIDES[s], index * step, qty)
        return book

    def depth(self, side: str) -> int:
        return len(self._levels[SIDES.index(side)])

    def _set(self, s: int, index: int, qty: int) -> None:
        """Set a level, keeping best/worst and the event's before-quantities."""
        levels = self._levels[s]
        prior = levels.get(index, 0)
        key = 2 * index + s
        if key not in self._touched:
            self._touched[key] = prior
        out = OUTWARD[s]
        if qty:
            levels[index] = qty
            if not prior:
                if len(levels) == 1:
                    self._best[s] = self._worst[s] = index
                elif (index - self._best[s]) * out < 0:
                    self._best[s] = index
                elif (index - self._worst[s]) * out > 0:
                    self._worst[s] = index
        elif prior:
            del levels[index]
            if levels:
                if index == self._best[s]:
                    index += out
                    while index not in levels:
                        index += out
                    self._best[s] = index
                elif index == self._worst[s]:
                    index -= out
                    while index not in levels:
                        index -= out
                    self._worst[s] = index

    def _net(self) -> list[GridChange]:
        """Touched levels whose quantity differs from the event's start: removals, then the rest."""
        levels = self._levels
        removals: list[GridChange] = []
        others: list[GridChange] = []
        for key, before in self._touched.items():
            s, index = key & 1, key >> 1
            after = levels[s].get(index, 0)
            if after != before:
                (others if after else removals).append((s, index, after))
        self._touched.clear()
        removals += others
        return removals
