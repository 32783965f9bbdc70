"""A gateway's local copy of one pair's stream, and the rule for every Redis message.

Pub/Sub is at-most-once, so the replica checks every delta's position: the next one is
applied and fanned out; an old one is dropped; a jump (or a new epoch) switches the
replica to catching up — deltas are buffered while the missing ones are read from
md_service's history, or, when history no longer reaches, a full book is loaded and every
subscriber gets a fresh snapshot. Subscribers therefore never see an unannounced gap.

The replica also keeps its most recent deltas (for ``since`` recovery) and the encoded
snapshot at its current seq (many subscribers share one encoding). A delta's checksum is
verified lazily, when a snapshot is built from the book: the deltas themselves are
forwarded as md_service's bytes, so the book matters only for snapshots.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from enum import Enum

from mdcore.codec import decode_delta, encode_snapshot
from mdcore.errors import IntegrityError, SequenceGapError
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, StreamPosition
from mdcore.sequencing import Verdict, classify
from mdcore.wire_format import book_checksum

log = logging.getLogger(__name__)


class ReplicaState(Enum):
    LOADING = "loading"  # no book yet, or catching up: buffer what arrives
    LIVE = "live"
    NO_DATA = "no_data"  # md_service has no stream for the pair (yet): nothing to serve


# (pair, epoch, seq) -> [(seq, bytes)] after seq, or None if history does not reach back
HistoryReader = Callable[[str, str, int], Awaitable[list[tuple[int, bytes]] | None]]
BookLoader = Callable[[str], Awaitable[LocalBook | None]]


class PairReplica:
    """Book + position of one pair, recent deltas, and what arrived while it was loading."""

    def __init__(
        self,
        pair: str,
        on_delta: Callable[[PairReplica, Delta, bytes], None],
        on_live: Callable[[PairReplica, bool], None],
        recent: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pair = pair
        self.local: LocalBook | None = None
        self.state = ReplicaState.LOADING
        self.recent: deque[tuple[int, bytes]] = deque(maxlen=recent)
        self._buffer: list[tuple[bytes, Delta]] = []
        self._on_delta = on_delta  # a delta was applied: fan its bytes out
        self._on_live = on_live  # went live; True if the book was replaced (all need a snapshot)
        self._clock = clock
        self.last_update = clock()
        self.not_live_since: float | None = clock()
        self.sent: StreamPosition | None = None  # last position handed to the fan-out
        self._snapshot: tuple[str, int, bytes] | None = None
        self._verified: tuple[str, int] | None = None  # position whose checksum was last checked
        self.gaps = 0
        self.reloads = 0
        self.history_fills = 0

    @property
    def live(self) -> bool:
        return self.state is ReplicaState.LIVE and self.local is not None

    @property
    def position(self) -> StreamPosition | None:
        local = self.local
        if local is None or local.epoch is None:
            return None
        return StreamPosition(local.epoch, local.seq)

    def offer(self, raw: bytes) -> bool:
        """Handle one delta from Redis. Returns True if a catch-up must run (or is running)."""
        delta = decode_delta(raw)
        local = self.local
        if self.state is not ReplicaState.LIVE or local is None:
            self._buffer.append((raw, delta))
            return True  # the hub starts a catch-up unless one is already running
        verdict = classify(local.epoch, local.seq, delta.epoch, delta.seq)
        if verdict is Verdict.NEXT:
            self._apply(raw, delta)
            return False
        if verdict is Verdict.STALE:
            return False
        self.gaps += 1  # a real jump in the stream (not a delta buffered while loading)
        log.info("%s: gap at %s/%d, received %s/%d", self.pair, local.epoch, local.seq,
                 delta.epoch, delta.seq)  # fmt: skip
        self._leave_live()
        self._buffer.append((raw, delta))
        return True

    def _apply(self, raw: bytes, delta: Delta) -> None:
        local = self.local
        assert local is not None
        local.apply_next(delta, verify=False)  # every caller classified it NEXT; verified in snapshots
        self.recent.append((delta.seq, raw))
        self.last_update = self._clock()
        self._on_delta(self, delta, raw)

    def _leave_live(self) -> None:
        self.state = ReplicaState.LOADING
        if self.not_live_since is None:
            self.not_live_since = self._clock()

    def invalidate(self) -> None:
        """The book failed its checksum: drop it and catch up (a reload, with snapshots owed)."""
        self.local = None
        self.mark_behind()

    def note_sent(self, position: StreamPosition | None) -> None:
        """How far this pair's deltas went out to the fan-out (what a client going stale saw)."""
        self.sent = position

    def mark_behind(self) -> None:
        """Someone (the audit) knows the stream moved on: catch up even without a new delta."""
        self._leave_live()

    async def catch_up(self, read_history: HistoryReader, load_book: BookLoader) -> None:
        """Bring the replica to the stream's head: from history if it reaches, else a full load."""
        self._leave_live()
        try:
            local = self.local
            if local is not None and local.epoch is not None:
                missed = await read_history(self.pair, local.epoch, local.seq)
                if missed is not None:
                    for _seq, raw in missed:
                        delta = decode_delta(raw)
                        verdict = classify(local.epoch, local.seq, delta.epoch, delta.seq)
                        if verdict is Verdict.GAP:  # a hole in the history: it cannot bring us up
                            raise SequenceGapError(self.pair, str(local.epoch), local.seq + 1,
                                                   delta.epoch, delta.seq)  # fmt: skip
                        if verdict is Verdict.NEXT:
                            self._apply(raw, delta)
                    self.history_fills += 1
                    self._go_live(reset=False)
                    return
            await self._reload(load_book)
        except (IntegrityError, ValueError) as exc:  # a delta that does not apply: start over
            log.warning("%s: %s; reloading the full book", self.pair, exc)
            await self._reload(load_book)

    async def _reload(self, load_book: BookLoader) -> None:
        local = await load_book(self.pair)
        if local is None:  # md_service has not published this pair (yet): wait for its first delta
            self.local = None
            self.recent.clear()
            self.state = ReplicaState.NO_DATA
            return
        self.local = local
        self.recent.clear()
        self._snapshot = None
        self.reloads += 1
        self.last_update = self._clock()
        self._go_live(reset=True)

    def _go_live(self, reset: bool) -> None:
        """Go live, then replay what arrived meanwhile through the normal rule.

        After a reload (``reset``) the subscribers get their snapshot *before* the buffered
        deltas are fanned out, so each sees the snapshot at S and then S+1, S+2, …
        """
        self.state = ReplicaState.LIVE
        if reset:
            self._on_live(self, True)
        buffered, self._buffer = self._buffer, []
        for i, (raw, delta) in enumerate(buffered):
            assert self.local is not None
            verdict = classify(self.local.epoch, self.local.seq, delta.epoch, delta.seq)
            if verdict is Verdict.NEXT:
                self._apply(raw, delta)
            elif verdict is Verdict.GAP:  # still behind: keep the rest for the next catch-up
                self._leave_live()
                self._buffer = buffered[i:]
                return
        self.not_live_since = None
        if not reset:
            self._on_live(self, False)

    @property
    def needs_catch_up(self) -> bool:
        return self.state is ReplicaState.LOADING and bool(self._buffer)

    def replay_after(self, seq: int) -> list[tuple[int, bytes]]:
        """The recent deltas after ``seq`` (may not reach back to ``seq + 1``)."""
        return [entry for entry in self.recent if entry[0] > seq]

    def verified_book(self) -> LocalBook | None:
        """The live book after checking its checksum (once per seq), or None if not live or wrong."""
        local = self.local
        if not self.live or local is None or local.epoch is None:
            return None
        if self._verified != (local.epoch, local.seq):
            if book_checksum(local.book, local.instrument) != local.checksum:
                return None
            self._verified = (local.epoch, local.seq)
        return local

    @property
    def snapshot_size(self) -> int | None:
        """Bytes of the last snapshot encoded (any seq): what a snapshot of this pair costs."""
        return len(self._snapshot[2]) if self._snapshot is not None else None

    def snapshot_bytes(self) -> bytes:
        """The encoded snapshot at the current seq, verified against the stream's checksum.

        Raises :class:`IntegrityError` if the book does not match (the caller reloads it).
        """
        local = self.local
        if local is None or local.epoch is None:
            raise RuntimeError(f"{self.pair}: no book")
        cached = self._snapshot
        if cached is not None and cached[0] == local.epoch and cached[1] == local.seq:
            return cached[2]
        computed = book_checksum(local.book, local.instrument)
        if computed != local.checksum:
            raise IntegrityError(
                self.pair,
                f"replica book at seq {local.seq} has checksum {computed}, expected {local.checksum}",
            )
        data = encode_snapshot(local.to_snapshot())
        self._snapshot = (local.epoch, local.seq, data)
        return data
