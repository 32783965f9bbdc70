"""Exchange events: the feed's Kafka message format, validated whole before any use.

Value (JSON): ``{"pair": "BTC-USD", "xseq": 17, "xts": <ns>, "changes": [["b", "64000.10", "1.25"], ...]}``
where ``xseq`` rises by 1 per event per pair and quantity "0" removes the level. An
event either validates completely or is rejected, so a bad event never half-applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from mdcore.book import ASK, BID
from mdcore.errors import InvalidEventError
from mdcore.instruments import Instrument, instrument

Change = tuple[str, int, int]  # (side, price units, qty units)


@dataclass(frozen=True, slots=True)
class ExchangeEvent:
    pair: str
    xseq: int
    xts: int
    changes: tuple[Change, ...]


def _positive_int(value: object, name: str) -> int:
    if type(value) is not int or value < 0:
        raise InvalidEventError(f"{name} must be a non-negative integer, not {value!r}")
    return value


def decode_event(raw: bytes | str) -> ExchangeEvent:
    """Parse and validate one event; raises :class:`InvalidEventError` (or a subclass)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError(f"not JSON: {exc}") from None
    if type(obj) is not dict:
        raise InvalidEventError("event must be a JSON object")
    for key in ("pair", "xseq", "xts", "changes"):
        if key not in obj:
            raise InvalidEventError(f"missing field {key!r}")
    pair = obj["pair"]
    inst: Instrument = instrument(pair)
    xseq = _positive_int(obj["xseq"], "xseq")
    xts = _positive_int(obj["xts"], "xts")
    raw_changes = obj["changes"]
    if type(raw_changes) is not list or not raw_changes:
        raise InvalidEventError("changes must be a non-empty list")
    parse_price, parse_qty = inst.parse_price, inst.parse_qty
    changes: list[Change] = []
    for change in raw_changes:
        if type(change) is not list or len(change) != 3:
            raise InvalidEventError(f"change must be [side, price, qty], not {change!r}")
        side, price, qty = change
        if side != BID and side != ASK:
            raise InvalidEventError(f"unknown side {side!r}")
        changes.append((side, parse_price(price), parse_qty(qty)))
    return ExchangeEvent(pair, xseq, xts, tuple(changes))


def encode_event(pair: str, xseq: int, xts: int, changes: Iterable[tuple[str, str, str]]) -> bytes:
    """Serialise an event whose prices and quantities are already canonical strings."""
    return orjson.dumps({"pair": pair, "xseq": xseq, "xts": xts, "changes": [list(c) for c in changes]})
