"""Everything the Binance dialect derives from one pair's stream, computed once for all its subscribers.

The gateway's replica of a pair applies each delta (gap-filled, checksum-verified) and
hands it here: :meth:`PairFeed.on_delta` maps its ``(epoch, seq)`` to an update id and
encodes the ``@depth@100ms`` event once; the same levels are folded into the ``@depth``
(1000 ms) event. Partial books are encoded once per depth and update id.

How a break in the stream reaches Binance clients as a jump, never as a silent skip:

- The update id is a faithful image of the stream position (``update_ids``): consecutive
  seqs give consecutive ids and nothing else does. When the replica cannot fill a gap and
  reloads the book (or a new epoch starts), the next delta it hands over is not the
  successor of the last one, so its ``U`` is not the previous ``u + 1``: every client
  refetches its snapshot, as the Binance procedure prescribes.
- A subscriber that was skipped while its connection lagged sees the same kind of jump
  on the next event it does get.
- The 1000 ms fold never spans a break: a non-consecutive window closes the pending event
  first (``DepthAggregator.add``), and :meth:`PairFeed.on_reset` closes it at once.
- A reload that lands *below* the last id handed out (a history rewritten inside an epoch)
  re-bases the epoch above it, so ids still only move forward; so does any delta whose id
  would not be above the last event's (whichever of ``on_reset`` and the replayed deltas
  the hub reports first).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.binance.events import DepthAggregator, encode_depth_update, levels8, partial_depth
from gateway.binance.symbols import SymbolInfo
from gateway.binance.update_ids import UpdateIds
from mdcore.local_book import LocalBook
from mdcore.messages import Delta


@dataclass(frozen=True, slots=True)
class FeedEvents:
    """What one delta produced: the ``@depth@100ms`` event, and a closed ``@depth`` event if any."""

    update_id: int
    fast: bytes
    slow: bytes | None


class PairFeed:
    __slots__ = ("_partials", "aggregator", "ids", "info", "last_id", "resets")

    def __init__(self, info: SymbolInfo, ids: UpdateIds) -> None:
        self.info = info
        self.ids = ids
        self.aggregator = DepthAggregator(info.symbol)
        self._partials: dict[int, tuple[int, bytes]] = {}  # levels -> (update id, payload)
        self.last_id = 0  # the last update id an event carried
        self.resets = 0

    def update_id(self, local: LocalBook) -> int:
        """The update id of a (synced) book of this pair, e.g. for a REST snapshot."""
        assert local.epoch is not None
        return self.ids.update_id(local.epoch, local.seq)

    def on_delta(self, delta: Delta) -> FeedEvents:
        """One applied delta -> its 100 ms event (and the 1000 ms event it closed, if any)."""
        uid = self.ids.update_id(delta.epoch, delta.seq)
        if uid <= self.last_id:  # the stream went back (a rewritten history): ids may not
            uid = self.ids.rebase(delta.epoch, delta.seq)
        event_ms = delta.ts // 1_000_000
        bids, asks = levels8(delta.bids, self.info), levels8(delta.asks, self.info)
        fast = encode_depth_update(self.info.symbol, uid, uid, event_ms, bids, asks)
        slow = self.aggregator.add(uid, uid, event_ms, bids, asks)
        self.last_id = uid
        return FeedEvents(uid, fast, slow)

    def on_reset(self, local: LocalBook) -> bytes | None:
        """The replica replaced its book: close the pending 1000 ms event so none spans the break."""
        self.resets += 1
        if local.epoch is not None and self.update_id(local) < self.last_id:
            self.ids.rebase(local.epoch, local.seq)
        return self.aggregator.flush()

    def flush_slow(self) -> bytes | None:
        """The ``@depth`` event of the second that just ended, if anything changed in it."""
        return self.aggregator.flush()

    def partial(self, local: LocalBook, levels: int) -> tuple[int, bytes]:
        """``(update id, payload)`` of the ``@depth<levels>`` stream for the book as it is now."""
        uid = self.update_id(local)
        cached = self._partials.get(levels)
        if cached is not None and cached[0] == uid:
            return cached
        made = uid, partial_depth(local, levels, uid)
        self._partials[levels] = made
        return made
