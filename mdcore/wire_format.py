"""Integer levels -> canonical wire strings, fast: the one formatter of every tier.

The rule is :func:`mdcore.numbers.units_pattern`, the same one
:func:`mdcore.numbers.format_units` (and so ``Instrument.format_price``/``format_qty``)
applies; here prices are remembered (a book's prices repeat window after window, and
snapshot after snapshot) and each side's pattern is looked up once per instrument.
md_service formats its windows with it, and the gateway and clients their snapshots and
checksums (``book_checksum``): formatting every level of a deep book took a fifth of a
gateway's time during a connection storm. The checksum is computed from the same strings,
by :func:`mdcore.checksum.checksum_of_wire_levels`.
"""

from __future__ import annotations

from collections.abc import Iterable

from mdcore.book import ASK, BID, OrderBook
from mdcore.checksum import CHECKSUM_DEPTH, checksum_of_wire_levels
from mdcore.instruments import Instrument
from mdcore.numbers import units_pattern

_PRICE_CACHE_LIMIT = 1 << 16

WireLevel = tuple[str, str]


class WireFormat:
    """One instrument's level formatting."""

    __slots__ = ("_pfmt", "_prices", "_pscale", "_qfmt", "_qscale")

    def __init__(self, inst: Instrument) -> None:
        self._pscale, self._pfmt = 10**inst.price_decimals, units_pattern(inst.price_decimals)
        self._qscale, self._qfmt = 10**inst.qty_decimals, units_pattern(inst.qty_decimals)
        self._prices: dict[int, str] = {}

    def price(self, units: int) -> str:
        text = self._prices.get(units)
        if text is None:
            if len(self._prices) >= _PRICE_CACHE_LIMIT:
                self._prices.clear()
            text = self._prices[units] = self._pfmt % divmod(units, self._pscale)
        return text

    def qty(self, units: int) -> str:
        return self._qfmt % divmod(units, self._qscale)

    def levels(self, levels: Iterable[tuple[int, int]]) -> list[WireLevel]:
        prices, price, qfmt, qscale = self._prices, self.price, self._qfmt, self._qscale
        return [(prices.get(p) or price(p), qfmt % divmod(q, qscale)) for p, q in levels]

    def checksum(self, book: OrderBook) -> int:
        """The protocol checksum of the book (its best 25 levels a side)."""
        return checksum_of_wire_levels(
            self.levels(book.top(BID, CHECKSUM_DEPTH)), self.levels(book.top(ASK, CHECKSUM_DEPTH))
        )


_FORMATS: dict[str, WireFormat] = {}


def wire_format(inst: Instrument) -> WireFormat:
    found = _FORMATS.get(inst.pair)
    if found is None:
        found = _FORMATS[inst.pair] = WireFormat(inst)
    return found


def book_checksum(book: OrderBook, inst: Instrument) -> int:
    """Checksum of an integer book, formatted on the instrument's grid."""
    return wire_format(inst).checksum(book)
