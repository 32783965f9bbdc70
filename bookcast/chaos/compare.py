"""One book against the exchange's: equal level by level, or the first place they differ.

Pure. Every copy is compared whole (every level, not only the 25 the checksum covers),
because a difference deeper than the checksum is exactly what a checksum cannot catch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Levels = Sequence[Sequence[str]]


@dataclass(frozen=True, slots=True)
class Divergence:
    """A copy of a book that is not the exchange's book (or could not be read)."""

    who: str  # "client 3 (gateway-1)", "gateway-2 REST", "md_service (Redis)"
    pair: str
    reason: str

    def __str__(self) -> str:
        return f"{self.who} {self.pair}: {self.reason}"


def _first_difference(side: str, want: Levels, got: Levels) -> str | None:
    want_t = [tuple(level) for level in want]
    got_t = [tuple(level) for level in got]
    if want_t == got_t:
        return None
    for i, (w, g) in enumerate(zip(want_t, got_t, strict=False)):
        if w != g:
            return f"{side} level {i}: {g} instead of {w}"
    return f"{side}: {len(got_t)} levels instead of {len(want_t)}"


def diff_book(
    who: str, pair: str, want: tuple[Levels, Levels], got: tuple[Levels, Levels]
) -> Divergence | None:
    """None if ``got`` (bids, asks) equals ``want`` level for level."""
    for side, w, g in (("bids", want[0], got[0]), ("asks", want[1], got[1])):
        reason = _first_difference(side, w, g)
        if reason is not None:
            return Divergence(who, pair, reason)
    return None
