"""Window coalescing: many changes to a level within one window become one.

md_service applies every exchange change to its book at once (so the book is always
current) and remembers, per touched level, the quantity it had when the window opened.
At the window's close the delta is every touched level whose quantity now differs from
that remembered one, read from the book: a level changed five times costs one entry,
and a level added and removed inside the window costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from mdcore.book import ASK, BID, Level, OrderBook


class WindowChanges:
    """Levels one pair touched since the window opened, and their opening quantities."""

    __slots__ = ("_ask_prior", "_bid_prior", "events", "first_xts")

    def __init__(self) -> None:
        self._bid_prior: dict[int, int] = {}
        self._ask_prior: dict[int, int] = {}
        self.first_xts: int | None = None
        self.events = 0

    def apply(self, book: OrderBook, side: str, price: int, qty: int) -> None:
        """Apply one change to ``book`` and remember the level's opening quantity."""
        prior = book.set_level(side, price, qty)
        touched = self._bid_prior if side == BID else self._ask_prior
        if price not in touched:
            touched[price] = prior

    def apply_changes(self, book: OrderBook, changes: Iterable[tuple[str, int, int]]) -> None:
        """:meth:`apply` for every ``(side, price, qty)`` of an event, in order (the hot path)."""
        bid_prior, ask_prior, set_level = self._bid_prior, self._ask_prior, book.set_level
        for side, price, qty in changes:
            prior = set_level(side, price, qty)
            touched = bid_prior if side == BID else ask_prior
            if price not in touched:
                touched[price] = prior

    def note_event(self, xts: int) -> None:
        """Count an event and keep the window's earliest exchange time."""
        self.events += 1
        if self.first_xts is None or xts < self.first_xts:
            self.first_xts = xts

    def is_empty(self) -> bool:
        return not self._bid_prior and not self._ask_prior

    def absorb(self, later: WindowChanges) -> None:
        """Extend this window by ``later``, the window opened when this one closed.

        For a close that was undone: a level touched in both keeps this window's opening
        quantity, so the net change is counted from this window's start.
        """
        for mine, theirs in ((self._bid_prior, later._bid_prior), (self._ask_prior, later._ask_prior)):
            for price, prior in theirs.items():
                mine.setdefault(price, prior)
        self.events += later.events
        if later.first_xts is not None and (self.first_xts is None or later.first_xts < self.first_xts):
            self.first_xts = later.first_xts

    def net_levels(self, book: OrderBook) -> tuple[list[Level], list[Level]]:
        """The levels whose quantity changed over the window, best first; qty 0 = removed."""
        bid_levels, ask_levels = book.side(BID), book.side(ASK)
        bids = [(p, q) for p, q0 in self._bid_prior.items() if (q := bid_levels.get(p, 0)) != q0]
        asks = [(p, q) for p, q0 in self._ask_prior.items() if (q := ask_levels.get(p, 0)) != q0]
        bids.sort(reverse=True)
        asks.sort()
        return bids, asks
