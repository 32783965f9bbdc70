"""Binance update ids from bookcast stream positions: ``(epoch, seq)`` -> one integer that never goes back.

A Binance client ignores every event whose ``u`` is not above its book's id, so an id that
went backwards (a new epoch restarting at seq 1) would freeze it forever. The mapping is

    update_id = epoch_ms * ID_SCALE + seq        (ID_SCALE = 1000)

where ``epoch_ms`` is the creation time md_service writes at the front of every epoch
(``"<ms>-<hex>"``, ``md_service.pair_stream.new_epoch``). Why it is safe:

- Within an epoch, seqs are consecutive, so ids are consecutive: an event's ``U`` is the
  previous ``u + 1`` exactly when the native stream has no gap.
- Across epochs: md_service publishes at most one seq per window (>= 50 ms), so an epoch
  alive for ``t`` ms reaches seq <= t/50 + 1, far below the ``t * 1000`` ids its successor's
  later creation time adds. The new epoch's ids are therefore above every old one, by a
  jump: the client sees ``U != u + 1`` and refetches its snapshot, exactly like a native
  client resyncs on a new epoch.
- Range: ids stay below 2**53 until epoch_ms reaches 9.007e12 (year 2255), so they are exact
  even in JavaScript clients that parse JSON numbers as doubles (an ``epoch_ms * 10**6``
  scheme would already exceed 2**53 today); they fit an int64 for far longer.

Defences, per pair, for what the argument above assumes: an epoch that does not start with a
plausible millisecond count (hand-made, or from another tool) uses this gateway's clock at
first sight instead; and whenever a newly seen epoch would not land at least two above every
id already handed out (a clock that stepped back between md_service hosts), its base is
raised so that it does. The natural mapping is the same on every gateway, so a REST snapshot
from one gateway matches a stream from another; only these rare overrides are local.
"""

from __future__ import annotations

from collections.abc import Callable

ID_SCALE = 1000
MAX_SAFE_ID = 2**53 - 1  # the largest integer a JSON double holds exactly
_KEEP_EPOCHS = 8


def epoch_ms(epoch: str) -> int | None:
    """The creation time in ms at the front of an md_service epoch, or None if it has none usable."""
    head = epoch.partition("-")[0]
    if not (head.isascii() and head.isdigit()) or len(head) > 16:
        return None
    ms = int(head)
    if ms <= 0 or ms * ID_SCALE > MAX_SAFE_ID:
        return None
    return ms


class UpdateIds:
    """The id mapping of one pair. Shared by its REST snapshots and stream events, so they agree."""

    __slots__ = ("_bases", "_clock_ms", "high", "overrides")

    def __init__(self, clock_ms: Callable[[], int]) -> None:
        self._bases: dict[str, int] = {}
        self._clock_ms = clock_ms
        self.high = 0  # the largest id handed out so far
        self.overrides = 0  # epochs whose natural base had to be raised (a clock went back)

    def update_id(self, epoch: str, seq: int) -> int:
        """The Binance update id of the book after ``seq`` of ``epoch``."""
        base = self._bases.get(epoch)
        if base is None:
            base = self._new_base(epoch, seq)
        uid = base + seq
        if uid > self.high:
            self.high = uid
        return uid

    def rebase(self, epoch: str, seq: int) -> int:
        """Forget ``epoch``'s base and map ``seq`` afresh, at least two above every id given out.

        For a book that went back inside an epoch (a history that was rewritten): its ids must
        still move forward, as a jump, or Binance clients would ignore it for good.
        """
        self._bases.pop(epoch, None)
        return self.update_id(epoch, seq)

    def _new_base(self, epoch: str, seq: int) -> int:
        ms = epoch_ms(epoch)
        base = (ms if ms is not None else self._clock_ms()) * ID_SCALE
        # At least two above every id given out: a client whose book is at ``high`` must see
        # the first id of this epoch as a jump (U > high + 1), never as the next update.
        if self.high and base + seq < self.high + 2:
            base = self.high + 2 - seq
            self.overrides += 1
        if len(self._bases) >= _KEEP_EPOCHS:
            del self._bases[next(iter(self._bases))]
        self._bases[epoch] = base
        return base
