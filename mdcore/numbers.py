"""Prices and quantities: integers inside, canonical fixed-decimal strings on the wire.

A value with ``decimals`` places is held as ``int(value * 10**decimals)``. Floats never
appear, so a price is the same string in every snapshot, delta and REST answer.
"""

from __future__ import annotations

from mdcore.errors import InvalidNumberError

# The one limit on a price or quantity string, on both sides: an exchange event md_service
# accepts, and the canonical form it writes (and every reader parses). A value whose canonical
# form would be longer ("9" * 64 gains a point and decimals) is rejected on the way in, so
# whatever md_service accepts it can write and every reader can read. Longer strings are never
# a real price or size, and past 4300 digits int() raises a plain ValueError instead of
# InvalidNumberError, which would escape md_service's event check.
MAX_NUMBER_LENGTH = 64
# MAX_UNITS[d]: the largest value whose canonical string with d decimals fits MAX_NUMBER_LENGTH
MAX_UNITS = tuple(10 ** (MAX_NUMBER_LENGTH - (1 if d else 0)) - 1 for d in range(MAX_NUMBER_LENGTH - 1))
_POW10 = tuple(10**k for k in range(MAX_NUMBER_LENGTH))


def parse_units(text: object, decimals: int) -> int:
    """Parse a non-negative decimal string into integer units of ``10**-decimals``.

    Extra fractional digits are accepted only if they are zeros ("1.500" with 2
    decimals); anything finer is off the grid and rejected. So is a value whose canonical
    string (:func:`format_units`) would exceed :data:`MAX_NUMBER_LENGTH`. No regex: this is
    on every tier's hot path (md_service's events, the gateway's and clients' books), and
    string methods parse in about 0.8 of the regex's time.
    """
    if type(text) is not str or len(text) > MAX_NUMBER_LENGTH:
        raise InvalidNumberError(f"not a non-negative decimal string: {text!r}")
    whole, dot, frac = text.partition(".")
    # isdigit() alone would accept other scripts' digits; isascii() leaves only 0-9.
    if not (whole.isdigit() and whole.isascii()) or (dot and not (frac.isdigit() and frac.isascii())):
        raise InvalidNumberError(f"not a non-negative decimal string: {text!r}")
    places = len(frac)
    if places <= decimals:
        units = int(whole + frac) * _POW10[decimals - places]
    elif frac[decimals:].strip("0"):
        raise InvalidNumberError(f"{text!r} has more than {decimals} decimals")
    else:
        units = int(whole + frac[:decimals])
    if units > MAX_UNITS[decimals]:  # its canonical form would be too long for any reader
        raise InvalidNumberError(too_long(text, decimals))
    return units


def too_long(text: str, decimals: int) -> str:
    """Why a value too big for :data:`MAX_NUMBER_LENGTH` is rejected (one wording for both parsers)."""
    return f"{text!r} with {decimals} decimals would be longer than {MAX_NUMBER_LENGTH} characters"


def units_pattern(decimals: int) -> str:
    """The ``%`` format of ``divmod(units, 10**decimals)`` that gives the canonical string:
    "1.05" style, or just the whole part. The one formatting rule: :func:`format_units` and
    the cached hot path (:class:`mdcore.wire_format.WireFormat`) both use it."""
    return "%d%.0s" if decimals == 0 else f"%d.%0{decimals}d"  # "%.0s" swallows the zero remainder


_PATTERNS = tuple(units_pattern(d) for d in range(MAX_NUMBER_LENGTH))


def format_units(units: int, decimals: int) -> str:
    """The canonical string of ``units``: exactly ``decimals`` places, no sign, no exponent."""
    return _PATTERNS[decimals] % divmod(units, _POW10[decimals])
