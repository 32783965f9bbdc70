"""The instrument catalogue: which pairs exist and the price/size grid of each.

Every tier reads the same catalogue, so md_service can reject an off-grid price, the
gateway can format a book, and a client can verify a checksum without asking anyone.
Besides the named pairs, ``SYN000-USD`` … ``SYN9999-USD`` exist for load tests that need
many pairs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mdcore.errors import InvalidNumberError, UnknownPairError
from mdcore.numbers import MAX_UNITS, format_units, parse_units


@dataclass(frozen=True, slots=True)
class Instrument:
    """One trading pair. Prices are multiples of ``tick`` units of ``10**-price_decimals``.

    ``min_price``/``max_price`` (units; 0 = the tick / the longest price any reader can
    parse) bound the prices md_service accepts from the exchange, like a venue's price
    filter: a price outside is a garbled event, not a market move.
    """

    pair: str
    price_decimals: int
    qty_decimals: int
    tick: int = 1
    lot: int = 1
    min_price: int = 0
    max_price: int = 0

    @property
    def price_band(self) -> tuple[int, int]:
        """The lowest and highest price (units) md_service accepts in an exchange event."""
        return (self.min_price or self.tick, self.max_price or MAX_UNITS[self.price_decimals])

    @property
    def band_text(self) -> str:
        lo, hi = self.price_band
        return f"[{self.format_price(lo)}, {self.format_price(hi)}]"

    def parse_price(self, text: str) -> int:
        """Price string -> integer units, rejecting zero and off-tick prices."""
        units = parse_units(text, self.price_decimals)
        if units <= 0 or units % self.tick:
            raise InvalidNumberError(f"{self.pair}: price {text!r} is not a positive multiple of the tick")
        return units

    def parse_qty(self, text: str) -> int:
        """Quantity string -> integer units; 0 means 'remove the level'."""
        units = parse_units(text, self.qty_decimals)
        if units % self.lot:
            raise InvalidNumberError(f"{self.pair}: quantity {text!r} is not a multiple of the lot")
        return units

    def format_price(self, units: int) -> str:
        return format_units(units, self.price_decimals)

    def format_qty(self, units: int) -> str:
        return format_units(units, self.qty_decimals)

    @property
    def tick_size(self) -> str:
        return self.format_price(self.tick)

    @property
    def lot_size(self) -> str:
        return self.format_qty(self.lot)


def _banded(pair: str, price_decimals: int, qty_decimals: int, max_price: str) -> Instrument:
    """An instrument whose prices may run from its tick up to ``max_price`` (a decimal string)."""
    return Instrument(pair, price_decimals, qty_decimals, max_price=parse_units(max_price, price_decimals))


# Bands: from the tick up to 150-2,000 times today's price (feed_simulator's start prices), as
# a venue's price filter would; a price beyond is a garbled event (md_service rejects it).
_NAMED: dict[str, Instrument] = {
    inst.pair: inst
    for inst in (
        _banded("BTC-USD", 2, 5, "10000000"),
        _banded("ETH-USD", 2, 4, "1000000"),
        _banded("SOL-USD", 2, 3, "100000"),
        _banded("XRP-USD", 4, 1, "1000"),
        _banded("ADA-USD", 4, 1, "1000"),
        _banded("DOGE-USD", 5, 0, "100"),
        _banded("LTC-USD", 2, 3, "100000"),
        _banded("DOT-USD", 3, 2, "10000"),
    )
}
_SYNTHETIC = re.compile(r"SYN[0-9]{3,4}-USD")
_SYNTHETIC_MAX_PRICE = parse_units("1000000", 2)  # synthetic pairs start at 100 (feed_simulator)

NAMED_PAIRS: tuple[str, ...] = tuple(_NAMED)


def instrument(pair: str) -> Instrument:
    """The instrument for ``pair``; raises :class:`UnknownPairError` for anything else."""
    if type(pair) is not str:  # also keeps an unhashable value (a list from bad JSON) out of the dict
        raise UnknownPairError(pair)
    found = _NAMED.get(pair)
    if found is not None:
        return found
    if _SYNTHETIC.fullmatch(pair):
        return Instrument(pair, price_decimals=2, qty_decimals=3, max_price=_SYNTHETIC_MAX_PRICE)
    raise UnknownPairError(pair)


def is_known_pair(pair: object) -> bool:
    try:
        instrument(pair)  # type: ignore[arg-type]
    except UnknownPairError:
        return False
    return True


def default_pairs(count: int) -> list[str]:
    """The first ``count`` pairs: the named ones, then synthetic ones."""
    if count < 1:
        raise ValueError("count must be at least 1")
    named = list(NAMED_PAIRS[:count])
    return named + [f"SYN{i:03d}-USD" for i in range(count - len(named))]
