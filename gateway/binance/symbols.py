"""Binance names and numbers for bookcast pairs: ``BTC-USD`` is ``BTCUSD``, values have 8 decimals.

Binance clients compare strings: python-binance, for one, deletes a level only when its
quantity is exactly ``"0.00000000"``. So every price and quantity is rewritten from the
pair's canonical string (``mdcore.instruments``) to Binance's 8-decimal form by padding
zeros. Canonical strings are unique per value, padding is injective, so the same level is
the same string in every REST answer and stream event, and zero is always ``"0.00000000"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from mdcore.instruments import Instrument, instrument

DECIMALS = 8
ZERO = "0.00000000"
_SCALE = 10**DECIMALS
# Binance's own rule for a symbol parameter (its -1100 message quotes this pattern).
SYMBOL_PATTERN = re.compile(r"[A-Z0-9\-_.]{1,20}")


def to8(canonical: str) -> str:
    """A canonical decimal string (``"64000.1"``-style, any places up to 8) in Binance's 8-place form."""
    whole, _, frac = canonical.partition(".")
    if len(frac) > DECIMALS:
        raise ValueError(f"{canonical!r} has more than {DECIMALS} decimals")
    return f"{whole}.{frac.ljust(DECIMALS, '0')}"


def units8(units: int, decimals: int) -> str:
    """Integer units of ``10**-decimals`` (``decimals`` <= 8) as an 8-place string, without a round trip."""
    whole, frac = divmod(units * 10 ** (DECIMALS - decimals), _SCALE)
    return f"{whole}.{frac:08d}"


def padder(decimals: int) -> Callable[[str], str]:
    """A fast ``to8`` for strings in canonical form with ``decimals`` places (what md_service writes):
    a concatenation; any other shape takes the checked path, so the result is always ``to8``'s."""
    if decimals == 0:
        return lambda text: text + ".00000000" if text.isdigit() else to8(text)
    suffix, dot = "0" * (DECIMALS - decimals), -decimals - 1
    return lambda text: text + suffix if len(text) > decimals + 1 and text[dot] == "." else to8(text)


def price_key(value8: str) -> tuple[int, str]:
    """Numeric order of 8-place strings without parsing: no leading zeros, so longer is larger."""
    return len(value8), value8


def symbol_of(pair: str) -> str:
    """``BTC-USD`` -> ``BTCUSD``."""
    return pair.replace("-", "").upper()


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """One pair as Binance clients see it."""

    pair: str
    symbol: str  # BTCUSD
    stream: str  # btcusd, the prefix of its stream names
    base: str  # BTC
    quote: str  # USD
    instrument: Instrument
    price8: Callable[[str], str]  # canonical price string -> 8 decimals
    qty8: Callable[[str], str]  # canonical quantity string -> 8 decimals

    @classmethod
    def of(cls, pair: str) -> SymbolInfo:
        inst = instrument(pair)
        if max(inst.price_decimals, inst.qty_decimals) > DECIMALS:
            raise ValueError(f"{pair}: more than {DECIMALS} decimals cannot be written the Binance way")
        base, sep, quote = pair.partition("-")
        if not sep:
            raise ValueError(f"{pair}: not a BASE-QUOTE pair")
        symbol = symbol_of(pair)
        return cls(
            pair, symbol, symbol.lower(), base, quote, inst,
            padder(inst.price_decimals), padder(inst.qty_decimals),
        )  # fmt: skip

    @property
    def tick_size(self) -> str:
        return units8(self.instrument.tick, self.instrument.price_decimals)

    @property
    def step_size(self) -> str:
        return units8(self.instrument.lot, self.instrument.qty_decimals)


class SymbolTable:
    """The pairs on offer, found by Binance symbol (REST) or lower-case stream symbol (streams).

    A pair that cannot be written the Binance way (not in the catalogue, more than 8
    decimals, or a symbol another pair already has) is left out and listed in ``rejected``
    with the reason, rather than taking every other symbol down with it.
    """

    __slots__ = ("_by_pair", "_by_stream", "_by_symbol", "pairs", "rejected")

    def __init__(self, pairs: Iterable[str]) -> None:
        self._by_symbol: dict[str, SymbolInfo] = {}
        self._by_pair: dict[str, SymbolInfo] = {}
        self.rejected: dict[str, str] = {}
        self.pairs = frozenset(pairs)  # what was offered (compare to know when to rebuild)
        for pair in sorted(self.pairs):
            try:
                info = SymbolInfo.of(pair)
            except ValueError as exc:  # UnknownPairError is a ValueError too
                self.rejected[pair] = str(exc)
                continue
            clash = self._by_symbol.get(info.symbol)
            if clash is not None:
                self.rejected[pair] = f"symbol {info.symbol} is already {clash.pair}"
                continue
            self._by_symbol[info.symbol] = info
            self._by_pair[pair] = info
        self._by_stream = {info.stream: info for info in self._by_symbol.values()}

    def by_symbol(self, symbol: str) -> SymbolInfo | None:
        return self._by_symbol.get(symbol)

    def by_stream(self, stream_symbol: str) -> SymbolInfo | None:
        return self._by_stream.get(stream_symbol)

    def by_pair(self, pair: str) -> SymbolInfo | None:
        return self._by_pair.get(pair)

    def __iter__(self) -> Iterator[SymbolInfo]:
        """Symbols in alphabetical order (exchangeInfo lists them this way)."""
        return iter(sorted(self._by_symbol.values(), key=lambda info: info.symbol))

    def __len__(self) -> int:
        return len(self._by_symbol)
