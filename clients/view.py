"""Read-only views of one pair's local book, in canonical decimal strings.

A view is live: it always shows the book as it is now, not a copy. While the pair is
not synced (waiting for its first snapshot, resyncing after a gap or a checksum
mismatch, or refused by the gateway) the book cannot be trusted, so every accessor answers
as if it were empty; check :attr:`BookView.synced` to tell "no levels" from "not known",
and :attr:`BookView.refusal` for why a pair stays unsynced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from clients.errors import SubscriptionRefusal
from mdcore.book import ASK, BID
from mdcore.messages import Snapshot, StreamPosition

if TYPE_CHECKING:
    from clients.book_set import PairState


class PriceLevel(NamedTuple):
    price: str
    qty: str


class BookLevels(NamedTuple):
    """Best-first levels of both sides: bids from the highest price, asks from the lowest."""

    bids: list[PriceLevel]
    asks: list[PriceLevel]


class BookView:
    """What a trading program may read of one pair's book; it cannot change it."""

    __slots__ = ("_state",)

    def __init__(self, state: PairState) -> None:
        self._state = state

    @property
    def pair(self) -> str:
        return self._state.pair

    @property
    def synced(self) -> bool:
        """True when the book is a verified copy of the source at :attr:`seq`."""
        return self._state.synced

    @property
    def refusal(self) -> SubscriptionRefusal | None:
        """The gateway's error answer to subscribing this pair, while it stands (then not synced)."""
        return self._state.refusal

    @property
    def epoch(self) -> str | None:
        return self._state.book.epoch if self._state.synced else None

    @property
    def seq(self) -> int:
        return self._state.book.seq

    @property
    def ts(self) -> int:
        """Time (ns) of the last applied snapshot or window close."""
        return self._state.book.ts

    @property
    def position(self) -> StreamPosition | None:
        return self._state.book.position if self._state.synced else None

    def _side(self, side: str, depth: int | None) -> list[PriceLevel]:
        if not self._state.synced:
            return []
        local = self._state.book
        fp, fq = local.instrument.format_price, local.instrument.format_qty
        return [PriceLevel(fp(p), fq(q)) for p, q in local.book.top(side, depth)]

    def best_bid(self) -> PriceLevel | None:
        levels = self._side(BID, 1)
        return levels[0] if levels else None

    def best_ask(self) -> PriceLevel | None:
        levels = self._side(ASK, 1)
        return levels[0] if levels else None

    def top(self, depth: int | None = 5) -> BookLevels:
        """The best ``depth`` levels of each side (every level if None)."""
        return BookLevels(self._side(BID, depth), self._side(ASK, depth))

    def spread(self) -> str | None:
        """Best ask minus best bid as a price string; None if a side is empty or not synced."""
        if not self._state.synced:
            return None
        book = self._state.book.book
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return None
        diff = ask[0] - bid[0]
        text = self._state.book.instrument.format_price(abs(diff))
        return text if diff >= 0 else f"-{text}"

    def as_snapshot(self) -> Snapshot | None:
        """The whole book as a snapshot message at its position (None if not synced)."""
        return self._state.book.to_snapshot() if self._state.synced else None

    def __repr__(self) -> str:
        if self.synced:
            state = f"seq={self.seq}"
        else:
            state = "unsynced" if self.refusal is None else f"refused {self.refusal.code}"
        return f"BookView({self.pair}, {state}, bid={self.best_bid()}, ask={self.best_ask()})"
