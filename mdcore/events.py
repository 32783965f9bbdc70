"""Exchange events: the feed's Kafka message format, validated whole before any use.

Value (JSON): ``{"pair": "BTC-USD", "xseq": 17, "xts": <ns>, "changes": [["b", "64000.10", "1.25"], ...]}``
where ``xseq`` rises by 1 per event per pair and quantity "0" removes the level. An
event either validates completely or is rejected, so a bad event never half-applies.

This is md_service's hot path (every exchange change passes here): the numbers are
parsed by :func:`mdcore.numbers.parse_units`, the one (regex-free) parser of every tier,
and prices, which repeat a lot, are remembered per instrument. A price must also lie in its
instrument's band (:attr:`mdcore.instruments.Instrument.price_band`), checked once per
distinct price string: a price far outside would top the book for every client. The band
is md_service's input rule only; readers accept any price md_service wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from mdcore.book import ASK, BID
from mdcore.errors import InvalidEventError, InvalidNumberError
from mdcore.instruments import Instrument, instrument
from mdcore.numbers import parse_units

Change = tuple[str, int, int]  # (side, price units, qty units)
EventParts = tuple[str, int, int, list[Change]]  # (pair, xseq, xts, changes)

_PRICE_CACHE_LIMIT = 1 << 15  # distinct price strings remembered per instrument


@dataclass(frozen=True, slots=True)
class ExchangeEvent:
    pair: str
    xseq: int
    xts: int
    changes: tuple[Change, ...]


class _Grid:
    """One instrument's parsing state: decimals, tick, lot, price band and a cache of parsed prices."""

    __slots__ = ("hi", "inst", "lo", "lot", "pdec", "prices", "qdec", "tick")

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.pdec, self.qdec = inst.price_decimals, inst.qty_decimals
        self.tick, self.lot = inst.tick, inst.lot
        self.lo, self.hi = inst.price_band
        self.prices: dict[str, int] = {}

    def price(self, text: object) -> int:
        """Parse and check a price not in the cache (then cache it): on the tick grid, in the band."""
        units = parse_units(text, self.pdec)
        if units <= 0 or units % self.tick:
            raise InvalidNumberError(
                f"{self.inst.pair}: price {text!r} is not a positive multiple of the tick"
            )
        if not self.lo <= units <= self.hi:
            raise InvalidNumberError(
                f"{self.inst.pair}: price {text!r} is outside its band {self.inst.band_text}", "out_of_band"
            )
        prices = self.prices
        if len(prices) >= _PRICE_CACHE_LIMIT:
            prices.clear()
        prices[text] = units  # type: ignore[index]  # parse_units accepted it, so it is a str
        return units


_GRIDS: dict[str, _Grid] = {}


def _grid(pair: object) -> _Grid:
    found = _GRIDS.get(pair) if type(pair) is str else None
    if found is None:
        found = _Grid(instrument(pair))  # type: ignore[arg-type]  # raises UnknownPairError
        _GRIDS[found.inst.pair] = found
    return found


def _non_negative_int(value: object, name: str) -> int:
    if type(value) is not int or value < 0:
        raise InvalidEventError(f"{name} must be a non-negative integer, not {value!r}", f"bad_{name}")
    return value


def parse_event(raw: bytes | str) -> EventParts:
    """Parse and validate one event into plain values; raises :class:`InvalidEventError`.

    What :func:`decode_event` does, without building the immutable event: md_service
    applies the changes at once and keeps nothing per event.
    """
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError(f"not JSON: {exc}", "not_json") from None
    if type(obj) is not dict:
        raise InvalidEventError("event must be a JSON object", "not_object")
    try:
        pair, xseq, xts, raw_changes = obj["pair"], obj["xseq"], obj["xts"], obj["changes"]
    except KeyError as exc:
        raise InvalidEventError(f"missing field {exc.args[0]!r}", "missing_field") from None
    grid = _grid(pair)
    if type(xseq) is not int or xseq < 0:
        _non_negative_int(xseq, "xseq")
    if type(xts) is not int or xts < 0:
        _non_negative_int(xts, "xts")
    if type(raw_changes) is not list or not raw_changes:
        raise InvalidEventError("changes must be a non-empty list", "bad_changes")
    prices, qdec, lot = grid.prices, grid.qdec, grid.lot
    changes: list[Change] = []
    append = changes.append
    for change in raw_changes:
        if type(change) is not list or len(change) != 3:
            raise InvalidEventError(f"change must be [side, price, qty], not {change!r}", "bad_change")
        side, price, qty = change
        if side != BID and side != ASK:
            raise InvalidEventError(f"unknown side {side!r}", "bad_side")
        units = prices.get(price) if type(price) is str else None
        if units is None:
            units = grid.price(price)
        size = parse_units(qty, qdec)
        if lot != 1 and size % lot:
            raise InvalidNumberError(f"{pair}: quantity {qty!r} is not a multiple of the lot")
        append((side, units, size))
    return pair, xseq, xts, changes


def decode_event(raw: bytes | str) -> ExchangeEvent:
    """Parse and validate one event; raises :class:`InvalidEventError` (or a subclass)."""
    pair, xseq, xts, changes = parse_event(raw)
    return ExchangeEvent(pair, xseq, xts, tuple(changes))


def encode_event(pair: str, xseq: int, xts: int, changes: Iterable[Sequence[str]]) -> bytes:
    """Serialise an event whose prices and quantities are already canonical strings.

    The one encoder of the event format: the feed's hot path calls it with a list of
    ``(side, price, qty)`` tuples, which orjson writes as arrays as they are.
    """
    listed = changes if isinstance(changes, list) else list(changes)
    return orjson.dumps({"pair": pair, "xseq": xseq, "xts": xts, "changes": listed})
