"""The fan-out: sessions grouped by subscription set, deltas packed into one frame per group.

Applied deltas are *pending* until the window's burst is over (``gateway.core.frame_clock``;
with no clock, until the end of the event-loop turn). Then :meth:`FanOut.flush` gives every
group whose pairs moved one frame holding all of its pairs' new deltas, in order
(``mdcore.codec.pack_frame`` of the bytes md_service published). Groups whose sets share
the same moved pairs share the same frame, so each distinct frame is encoded once, and the
per-client work is one transport write. A window's deltas for many pairs therefore cost
each client one frame, not one per pair or per md_service slot.

A client just sent a snapshot (or a replay) at seq S of a pair already holds every pending
delta of that pair up to S: its *floor* (:meth:`FanOut.floor`) makes the next flush write
it only the deltas after S, so the stream after a snapshot always continues at S+1.

Only sessions that keep up are group members: a stale one is taken out by ``gateway.slow``
and put back after its snapshots.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from websockets.protocol import OPEN

from gateway.core.counters import Counters
from gateway.core.frame_clock import FrameClock
from gateway.core.wsframe import text_frame
from gateway.session import Subscriber
from mdcore.codec import pack_frame


class Group:
    """Sessions with exactly the same set of pairs."""

    __slots__ = ("_writers", "key", "members", "pairs")

    def __init__(self, key: frozenset[str]) -> None:
        self.key = key
        self.pairs = tuple(sorted(key))
        self.members: dict[Subscriber, None] = {}
        self._writers: tuple[Subscriber, ...] | None = None

    def writers(self) -> tuple[Subscriber, ...]:
        """The members as a tuple, rebuilt only after a change (the flush iterates it)."""
        writers = self._writers
        if writers is None:
            writers = self._writers = tuple(self.members)
        return writers

    def add(self, session: Subscriber) -> None:
        self.members[session] = None
        self._writers = None

    def discard(self, session: Subscriber) -> None:
        if session in self.members:
            del self.members[session]
            self._writers = None


class FanOut:
    def __init__(
        self,
        counters: Counters,
        on_batch: Callable[[dict[str, list[tuple[int, bytes]]]], None],
        clock: FrameClock | None = None,
    ) -> None:
        self.counters = counters
        self.groups: dict[frozenset[str], Group] = {}
        self.by_pair: dict[str, set[Group]] = {}
        self.pending: dict[str, list[tuple[int, bytes]]] = {}
        self._on_batch = on_batch  # told what a flush is about to send (before any write)
        self._clock = clock if clock is not None and not clock.immediate else None
        self._timer: asyncio.TimerHandle | None = None
        self._scheduled = False

    # --- membership ----------------------------------------------------------------------

    def join(self, session: Subscriber) -> None:
        """Make ``session`` receive deltas of its current pairs (moves it between groups)."""
        key = frozenset(session.pairs)
        current = session.group
        if current is not None:
            if current.key == key:
                return
            self.leave(session)
        if not key:
            return
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(key)
            for pair in key:
                self.by_pair.setdefault(pair, set()).add(group)
        group.add(session)
        session.group = group

    def leave(self, session: Subscriber) -> None:
        """Stop ``session``'s deltas (stale, closing, or about to change its pairs)."""
        group = session.group
        if group is None:
            return
        session.group = None
        group.discard(session)
        if not group.members:
            del self.groups[group.key]
            for pair in group.key:
                groups = self.by_pair.get(pair)
                if groups is not None:
                    groups.discard(group)
                    if not groups:
                        del self.by_pair[pair]

    # --- deltas --------------------------------------------------------------------------

    def queue(self, pair: str, seq: int, raw: bytes) -> None:
        """A delta was applied: send it with the rest of its burst (or of this event-loop turn)."""
        pending = self.pending.get(pair)
        if pending is None:
            self.pending[pair] = [(seq, raw)]
        else:
            pending.append((seq, raw))
        clock = self._clock
        if clock is None:
            if not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self.flush)
            return
        loop = asyncio.get_running_loop()
        if clock.arrived(loop.time()):
            self._timer = loop.call_at(clock.due(), self._on_timer)

    def _on_timer(self) -> None:
        clock = self._clock
        assert clock is not None
        loop = asyncio.get_running_loop()
        due = clock.due()
        if loop.time() < due:  # more of the burst came meanwhile: wait for its end
            self._timer = loop.call_at(due, self._on_timer)
            return
        self._timer = None
        self.flush()

    def floor(self, session: Subscriber, pair: str, seq: int) -> None:
        """``session`` was just sent ``pair`` up to ``seq``: pending deltas up to it are not for it."""
        floors = session.floors
        if pair in self.pending:
            if floors is None:
                session.floors = {pair: seq}
            else:
                floors[pair] = seq
        elif floors is not None:  # nothing pending: whatever comes next is after seq
            floors.pop(pair, None)

    def drop_pending(self, pair: str) -> None:
        """Forget the pair's deltas not yet written (a reload replaced them with a snapshot)."""
        self.pending.pop(pair, None)

    def flush(self) -> None:
        """Write every pending delta: one frame per group, built once per distinct content."""
        self._scheduled = False
        if self._clock is not None:
            self._clock.flushed()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        batch = self.pending
        if not batch:
            return
        self.pending = {}
        self._on_batch(batch)
        counters = self.counters
        counters["flushes"] += 1
        groups: set[Group] = set()
        by_pair = self.by_pair
        for pair in batch:
            found = by_pair.get(pair)
            if found:
                groups |= found
        frames: dict[tuple[str, ...], tuple[bytes, int]] = {}
        frames_out = bytes_out = deltas_out = errors = 0
        for group in groups:
            key = tuple(pair for pair in group.pairs if pair in batch)
            built = frames.get(key)
            if built is None:
                messages = [raw for pair in key for _seq, raw in batch[pair]]
                built = frames[key] = (text_frame(pack_frame(messages)), len(messages))
            for session in group.writers():
                if session.protocol.state is not OPEN:
                    continue
                data, count = built
                if session.floors is not None:  # just got a snapshot: only what is newer than it
                    own = _above_floors(key, batch, session.floors)
                    session.floors = None
                    if own is None:
                        continue
                    data, count = own
                try:
                    session.transport.write(data)
                except (RuntimeError, OSError):
                    errors += 1
                    continue
                frames_out += 1
                bytes_out += len(data)
                deltas_out += count
        counters["frames_built"] += len(frames)
        counters["frames_out"] += frames_out
        counters["bytes_out"] += bytes_out
        counters["deltas_out"] += deltas_out
        if errors:
            counters["write_errors"] += errors


def _above_floors(
    key: tuple[str, ...], batch: dict[str, list[tuple[int, bytes]]], floors: dict[str, int]
) -> tuple[bytes, int] | None:
    """The frame of ``key``'s deltas after each pair's floor (None if nothing is left)."""
    messages = [raw for pair in key for seq, raw in batch[pair] if pair not in floors or seq > floors[pair]]
    if not messages:
        return None
    return text_frame(pack_frame(messages)), len(messages)
