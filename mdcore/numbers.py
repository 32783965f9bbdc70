"""Prices and quantities: integers inside, canonical fixed-decimal strings on the wire.

A value with ``decimals`` places is held as ``int(value * 10**decimals)``. Floats never
appear, so a price is the same string in every snapshot, delta and REST answer.
"""

from __future__ import annotations

import re

from mdcore.errors import InvalidNumberError

_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# The one limit on a price or quantity string, on both sides: an exchange event md_service
# accepts, and the canonical form it writes (and every reader parses). A value whose canonical
# form would be longer ("9" * 64 gains a point and decimals) is rejected on the way in, so
# whatever md_service accepts it can write and every reader can read. Longer strings are never
# a real price or size, and past 4300 digits int() raises a plain ValueError instead of
# InvalidNumberError, which would escape md_service's event check.
MAX_NUMBER_LENGTH = 64
# MAX_UNITS[d]: the largest value whose canonical string with d decimals fits MAX_NUMBER_LENGTH
MAX_UNITS = tuple(10 ** (MAX_NUMBER_LENGTH - (1 if d else 0)) - 1 for d in range(MAX_NUMBER_LENGTH - 1))


def parse_units(text: str, decimals: int) -> int:
    """Parse a non-negative decimal string into integer units of ``10**-decimals``.

    Extra fractional digits are accepted only if they are zeros ("1.500" with 2
    decimals); anything finer is off the grid and rejected. So is a value whose canonical
    string (:func:`format_units`) would exceed :data:`MAX_NUMBER_LENGTH`.
    """
    if type(text) is not str or len(text) > MAX_NUMBER_LENGTH or not _DECIMAL.fullmatch(text):
        raise InvalidNumberError(f"not a non-negative decimal string: {text!r}")
    whole, _, frac = text.partition(".")
    if len(frac) > decimals:
        if frac[decimals:].strip("0"):
            raise InvalidNumberError(f"{text!r} has more than {decimals} decimals")
        frac = frac[:decimals]
    units = int(whole) if decimals == 0 else int(whole) * 10**decimals + int(frac.ljust(decimals, "0"))
    if units > MAX_UNITS[decimals]:
        raise InvalidNumberError(too_long(text, decimals))
    return units


def too_long(text: str, decimals: int) -> str:
    """Why a value too big for :data:`MAX_NUMBER_LENGTH` is rejected (one wording for both parsers)."""
    return f"{text!r} with {decimals} decimals would be longer than {MAX_NUMBER_LENGTH} characters"


def format_units(units: int, decimals: int) -> str:
    """The canonical string of ``units``: exactly ``decimals`` places, no sign, no exponent."""
    if decimals == 0:
        return str(units)
    whole, frac = divmod(units, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}"
