"""Binance stream payloads, each encoded once and shared by every subscriber of its stream.

- diff depth (``<symbol>@depth@100ms``): one ``depthUpdate`` event per bookcast window, with
  ``U == u`` = the window's update id. There is no ``pu`` field: clients take its presence
  to mean a futures stream.
- diff depth at 1000 ms (``<symbol>@depth``): :class:`DepthAggregator` folds consecutive
  windows into one event (last quantity per level wins, ``U`` = first id, ``u`` = last id).
  It never folds across a discontinuity, which would hide a gap inside one event.
- partial book (``<symbol>@depth5|10|20``): the top levels with ``lastUpdateId``.
- combined streams: ``{"stream":<name>,"data":<event>}`` built by byte concatenation, so
  the event is not re-encoded per stream name.
"""

from __future__ import annotations

import orjson

from gateway.binance.symbols import SymbolInfo, price_key, units8
from mdcore.book import ASK, BID
from mdcore.local_book import LocalBook
from mdcore.messages import WireLevels

Levels8 = list[list[str]]


def levels8(levels: WireLevels, info: SymbolInfo) -> Levels8:
    """A pair's canonical ``[price, qty]`` levels -> Binance 8-decimal levels, order kept."""
    price8, qty8 = info.price8, info.qty8
    return [[price8(price), qty8(qty)] for price, qty in levels]


def book_levels8(local: LocalBook, side: str, depth: int | None) -> Levels8:
    """The best ``depth`` levels of one side of a book, best first, as 8-decimal strings."""
    inst = local.instrument
    pd, qd = inst.price_decimals, inst.qty_decimals
    return [[units8(price, pd), units8(qty, qd)] for price, qty in local.book.top(side, depth)]


def encode_depth_update(
    symbol: str, first_id: int, last_id: int, event_ms: int, bids: Levels8, asks: Levels8
) -> bytes:
    return orjson.dumps(
        {"e": "depthUpdate", "E": event_ms, "s": symbol, "U": first_id, "u": last_id, "b": bids, "a": asks}
    )


def encode_partial_depth(last_id: int, bids: Levels8, asks: Levels8) -> bytes:
    return orjson.dumps({"lastUpdateId": last_id, "bids": bids, "asks": asks})


def partial_depth(local: LocalBook, levels: int, last_id: int) -> bytes:
    """The ``@depth<levels>`` payload of a book whose update id is ``last_id``."""
    return encode_partial_depth(last_id, book_levels8(local, BID, levels), book_levels8(local, ASK, levels))


def wrap_combined(stream: bytes, event: bytes) -> bytes:
    """The combined-stream frame for ``event``; ``stream`` is an ASCII name that needs no escaping."""
    return b'{"stream":"' + stream + b'","data":' + event + b"}"


class DepthAggregator:
    """One pair's ``@depth`` (1000 ms) event in the making: consecutive windows folded together."""

    __slots__ = ("_asks", "_bids", "event_ms", "first_id", "last_id", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._bids: dict[str, str] = {}
        self._asks: dict[str, str] = {}
        self.first_id: int | None = None
        self.last_id: int | None = None
        self.event_ms = 0

    @property
    def pending(self) -> bool:
        return self.last_id is not None

    def add(self, first_id: int, last_id: int, event_ms: int, bids: Levels8, asks: Levels8) -> bytes | None:
        """Fold one window in. If it does not continue the pending event (``first_id`` is not the
        pending ``u + 1``), the pending event is returned first, closed, and a new one starts:
        subscribers then see the jump between the two events and refetch their snapshot."""
        flushed = None
        if self.last_id is not None and first_id != self.last_id + 1:
            flushed = self.flush()
        if self.first_id is None:
            self.first_id = first_id
        for price, qty in bids:
            self._bids[price] = qty
        for price, qty in asks:
            self._asks[price] = qty
        self.last_id = last_id
        self.event_ms = event_ms
        return flushed

    def flush(self) -> bytes | None:
        """The folded event (levels best first), or None if nothing is pending; starts afresh."""
        if self.first_id is None or self.last_id is None:
            return None
        bids = [[p, self._bids[p]] for p in sorted(self._bids, key=price_key, reverse=True)]
        asks = [[p, self._asks[p]] for p in sorted(self._asks, key=price_key)]
        event = encode_depth_update(self.symbol, self.first_id, self.last_id, self.event_ms, bids, asks)
        self._bids, self._asks = {}, {}
        self.first_id = self.last_id = None
        return event
