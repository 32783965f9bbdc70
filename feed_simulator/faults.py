"""Fault injection: extra messages that a correct consumer must survive, each kind counted.

Three kinds, each switched on by its own rate (the chance per real event, 0 = off):

- **duplicate**: the event is sent twice in a row (a producer retry); a consumer sees the
  same ``xseq`` again and must skip it.
- **redelivery**: the event is sent again right after the pair's *next* event (a broker
  or consumer-group redelivery, out of order); a consumer sees an ``xseq`` below the last
  one and must skip it.
- **malformed**: a broken message (see :data:`MALFORMED_KINDS`) goes after the event, on the
  same key; a consumer must reject it whole and keep going.

Injected messages are extra: every real event is still sent once, in order, so the book a
correct consumer builds is the same as without faults. Pure and seeded: the same seed
injects the same faults at the same places.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import orjson

from feed_simulator.source import EncodedEvent

DUPLICATE = "duplicate"
REDELIVERY = "redelivery"
MALFORMED = "malformed"
MALFORMED_KINDS = (
    "not_json",  # bytes that do not parse
    "not_object",  # valid JSON, but an array
    "missing_field",  # no "changes"
    "unknown_pair",  # a pair outside the catalogue
    "off_grid_price",  # a price with one decimal more than the pair allows
    "bad_side",  # a change whose side is neither "b" nor "a"
    "empty_changes",  # an event that changes nothing
)


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Chance per real event of each injected fault; all zero = no injection."""

    duplicate: float = 0.0
    redelivery: float = 0.0
    malformed: float = 0.0

    def __post_init__(self) -> None:
        for name in ("duplicate", "redelivery", "malformed"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} rate must be within [0, 1], not {value}")

    @property
    def any(self) -> bool:
        return bool(self.duplicate or self.redelivery or self.malformed)


class Injected:
    """An extra message: its kind (``duplicate``, ``redelivery`` or ``malformed``) and bytes."""

    __slots__ = ("key", "kind", "value")

    def __init__(self, kind: str, key: bytes, value: bytes) -> None:
        self.kind = kind
        self.key = key
        self.value = value

    def __repr__(self) -> str:
        return f"Injected({self.kind}, {self.key!r}, {self.value[:60]!r})"


class FaultInjector:
    """Decides, per real event, which extra messages follow it; counts them by kind."""

    def __init__(self, rates: FaultRates, rng: random.Random) -> None:
        self.rates = rates
        self._rng = rng
        self._held: dict[bytes, EncodedEvent] = {}  # per pair key: an event to redeliver later
        self.counts: Counter[str] = Counter()  # duplicate, redelivery, malformed, malformed:<kind>

    def after(self, event: EncodedEvent) -> list[Injected]:
        """The extra messages to send right after ``event`` (often none)."""
        rng, rates = self._rng, self.rates
        extra: list[Injected] = []
        held = self._held.pop(event.key, None)
        if held is not None:  # the pair moved on: now the held event arrives late
            extra.append(Injected(REDELIVERY, held.key, held.value))
        if rates.duplicate and rng.random() < rates.duplicate:
            extra.append(Injected(DUPLICATE, event.key, event.value))
        if rates.redelivery and rng.random() < rates.redelivery:
            self._held[event.key] = event
        if rates.malformed and rng.random() < rates.malformed:
            kind = MALFORMED_KINDS[int(rng.random() * len(MALFORMED_KINDS))]
            extra.append(Injected(MALFORMED, event.key, malformed(kind, event)))
            self.counts[f"{MALFORMED}:{kind}"] += 1
        for message in extra:
            self.counts[message.kind] += 1
        return extra

    def pending(self) -> int:
        """Events held for a redelivery that has not happened yet (never sent if the run ends)."""
        return len(self._held)


def malformed(kind: str, event: EncodedEvent) -> bytes:
    """A broken variant of ``event`` of the given kind (never containing a newline)."""
    obj = orjson.loads(event.value)
    if kind == "not_json":
        return event.value[: max(1, len(event.value) // 2)]
    if kind == "not_object":
        return orjson.dumps([obj["pair"], obj["xseq"]])
    if kind == "missing_field":
        del obj["changes"]
    elif kind == "unknown_pair":
        obj["pair"] = "NOPE-USD"
    elif kind == "off_grid_price":
        side, price, qty = obj["changes"][0]
        obj["changes"][0] = [side, price + "9" if "." in price else price + ".9", qty]
    elif kind == "bad_side":
        obj["changes"][0][0] = "x"
    elif kind == "empty_changes":
        obj["changes"] = []
    else:
        raise ValueError(f"unknown malformed kind {kind!r}")
    return orjson.dumps(obj)
