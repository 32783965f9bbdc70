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
from mdcore.numbers import format_units, parse_units


@dataclass(frozen=True, slots=True)
class Instrument:
    """One trading pair. Prices are multiples of ``tick`` units of ``10**-price_decimals``."""

    pair: str
    price_decimals: int
    qty_decimals: int
    tick: int = 1
    lot: int = 1

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


_NAMED: dict[str, Instrument] = {
    inst.pair: inst
    for inst in (
        Instrument("BTC-USD", price_decimals=2, qty_decimals=5),
        Instrument("ETH-USD", price_decimals=2, qty_decimals=4),
        Instrument("SOL-USD", price_decimals=2, qty_decimals=3),
        Instrument("XRP-USD", price_decimals=4, qty_decimals=1),
        Instrument("ADA-USD", price_decimals=4, qty_decimals=1),
        Instrument("DOGE-USD", price_decimals=5, qty_decimals=0),
        Instrument("LTC-USD", price_decimals=2, qty_decimals=3),
        Instrument("DOT-USD", price_decimals=3, qty_decimals=2),
    )
}
_SYNTHETIC = re.compile(r"SYN[0-9]{3,4}-USD")

NAMED_PAIRS: tuple[str, ...] = tuple(_NAMED)


def instrument(pair: str) -> Instrument:
    """The instrument for ``pair``; raises :class:`UnknownPairError` for anything else."""
    if type(pair) is not str:  # also keeps an unhashable value (a list from bad JSON) out of the dict
        raise UnknownPairError(pair)
    found = _NAMED.get(pair)
    if found is not None:
        return found
    if _SYNTHETIC.fullmatch(pair):
        return Instrument(pair, price_decimals=2, qty_decimals=3)
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
