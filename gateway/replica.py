"""A gateway's local copy of one pair's stream, and the rule for every Redis message.

Pub/Sub is at-most-once, so the replica checks every delta's position: the next one is
applied and fanned out; an old one is dropped; a jump (or a new epoch) switches the
replica to catching up — deltas are buffered while the missing ones are read from
md_service's history, or, when history no longer reaches, a full book is loaded and every
subscriber gets a fresh snapshot. Subscribers therefore never see an unannounced gap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from enum import Enum

from mdcore.codec import decode_delta
from mdcore.errors import IntegrityError
from mdcore.local_book import LocalBook
from mdcore.messages import Delta
from mdcore.sequencing import Verdict, classify

log = logging.getLogger(__name__)


class ReplicaState(Enum):
    LOADING = "loading"  # no book yet (or a book being replaced): buffer everything
    LIVE = "live"


# (replica, deltas after its seq) -> the bytes of each, or None if history does not reach
HistoryReader = Callable[[str, str, int], Awaitable[list[bytes] | None]]
BookLoader = Callable[[str], Awaitable[LocalBook | None]]


class PairReplica:
    """Book + position of one pair, plus the deltas that arrived while it was loading."""

    def __init__(
        self,
        pair: str,
        on_delta: Callable[[PairReplica, bytes], None],
        on_reset: Callable[[PairReplica], None],
    ) -> None:
        self.pair = pair
        self.local: LocalBook | None = None
        self.state = ReplicaState.LOADING
        self._buffer: list[tuple[bytes, Delta]] = []
        self._on_delta = on_delta  # a delta was applied: fan its bytes out
        self._on_reset = on_reset  # the book was replaced: subscribers need a snapshot
        self.last_update = time.monotonic()
        self.gaps = 0
        self.reloads = 0

    @property
    def live(self) -> bool:
        return self.state is ReplicaState.LIVE and self.local is not None

    def offer(self, raw: bytes) -> bool:
        """Handle one delta from Redis. Returns True if a catch-up must run (or is running)."""
        delta = decode_delta(raw)
        if self.state is not ReplicaState.LIVE or self.local is None:
            self._buffer.append((raw, delta))
            return True  # the hub starts a catch-up unless one is already running
        verdict = classify(self.local.epoch, self.local.seq, delta.epoch, delta.seq)
        if verdict is Verdict.STALE:
            return False
        if verdict is Verdict.NEXT:
            self._apply(raw, delta)
            return False
        self.gaps += 1  # a real jump in the stream (not a delta buffered while loading)
        log.info("%s: gap at %s/%d, received %s/%d", self.pair, self.local.epoch, self.local.seq,
                 delta.epoch, delta.seq)  # fmt: skip
        self.state = ReplicaState.LOADING
        self._buffer.append((raw, delta))
        return True

    def _apply(self, raw: bytes, delta: Delta) -> None:
        assert self.local is not None
        self.local.apply_delta(delta)
        self.last_update = time.monotonic()
        self._on_delta(self, raw)

    async def catch_up(self, read_history: HistoryReader, load_book: BookLoader) -> None:
        """Bring the replica to the stream's head: from history if it reaches, else a full load."""
        self.state = ReplicaState.LOADING
        try:
            if self.local is not None and self.local.epoch is not None:
                missed = await read_history(self.pair, self.local.epoch, self.local.seq)
                if missed is not None:
                    for raw in missed:
                        self._apply(raw, decode_delta(raw))
                    self._go_live()
                    return
            await self._reload(load_book)
        except IntegrityError as exc:
            log.warning("%s: %s; reloading the full book", self.pair, exc)
            await self._reload(load_book)

    async def _reload(self, load_book: BookLoader) -> None:
        local = await load_book(self.pair)
        if local is None:  # md_service has not published this pair yet: wait for its first delta
            self.local = None
            return
        self.local = local
        self.reloads += 1
        self.last_update = time.monotonic()
        self._go_live()
        self._on_reset(self)

    def _go_live(self) -> None:
        """Replay what arrived meanwhile through the normal rule (old ones drop out)."""
        self.state = ReplicaState.LIVE
        buffered, self._buffer = self._buffer, []
        for i, (raw, delta) in enumerate(buffered):
            assert self.local is not None
            verdict = classify(self.local.epoch, self.local.seq, delta.epoch, delta.seq)
            if verdict is Verdict.NEXT:
                self._apply(raw, delta)
            elif verdict is Verdict.GAP:  # still behind: keep the rest for the next catch-up
                self.state = ReplicaState.LOADING
                self._buffer = buffered[i:]
                return

    @property
    def needs_catch_up(self) -> bool:
        return self.state is ReplicaState.LOADING and bool(self._buffer)
