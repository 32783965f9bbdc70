"""The book checksum every delta and snapshot carries (protocol v1).

CRC-32 (unsigned) of the ASCII string that joins with ":" — for i = 0..24 in order —
bid level i as ``price:qty`` then ask level i as ``price:qty``, leaving out levels that
do not exist. Strings are the canonical wire strings, so any client in any language
can compute it from what it received. An integer book's checksum is
:func:`mdcore.wire_format.book_checksum`.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

CHECKSUM_DEPTH = 25


def checksum_of_wire_levels(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> int:
    """Checksum of best-first ``[price, qty]`` string levels (only the first 25 count)."""
    parts: list[str] = []
    for i in range(CHECKSUM_DEPTH):
        if i < len(bids):
            parts.append(f"{bids[i][0]}:{bids[i][1]}")
        if i < len(asks):
            parts.append(f"{asks[i][0]}:{asks[i][1]}")
        if i >= len(bids) and i >= len(asks):
            break
    return zlib.crc32(":".join(parts).encode("ascii"))
