"""The fan-out: sessions grouped by subscription set, deltas packed into one frame per group.

Deltas applied during one event-loop turn are *pending*; at the end of the turn
(:meth:`FanOut.flush`, scheduled with ``call_soon``) every group whose pairs moved gets one
frame holding all of its pairs' new deltas, in order (``mdcore.codec.pack_frame`` of the
bytes md_service published). Groups whose sets share the same moved pairs share the same
frame, so each distinct frame is encoded once, and the per-client work is one transport
write. A window's deltas for many pairs therefore cost each client one frame, not one per pair.

Only sessions that keep up are group members: a stale one is taken out by ``gateway.slow``
and put back after its snapshots.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from websockets.protocol import OPEN

from gateway.counters import Counters
from gateway.session import ClientSession
from gateway.wsframe import text_frame
from mdcore.codec import pack_frame


class Group:
    """Sessions with exactly the same set of pairs."""

    __slots__ = ("_writers", "key", "members", "pairs")

    def __init__(self, key: frozenset[str]) -> None:
        self.key = key
        self.pairs = tuple(sorted(key))
        self.members: dict[ClientSession, None] = {}
        self._writers: tuple[ClientSession, ...] | None = None

    def writers(self) -> tuple[ClientSession, ...]:
        """The members as a tuple, rebuilt only after a change (the flush iterates it)."""
        writers = self._writers
        if writers is None:
            writers = self._writers = tuple(self.members)
        return writers

    def add(self, session: ClientSession) -> None:
        self.members[session] = None
        self._writers = None

    def discard(self, session: ClientSession) -> None:
        if session in self.members:
            del self.members[session]
            self._writers = None


class FanOut:
    def __init__(
        self, counters: Counters, on_batch: Callable[[dict[str, list[tuple[int, bytes]]]], None]
    ) -> None:
        self.counters = counters
        self.groups: dict[frozenset[str], Group] = {}
        self.by_pair: dict[str, set[Group]] = {}
        self.pending: dict[str, list[tuple[int, bytes]]] = {}
        self._on_batch = on_batch  # told what a flush is about to send (before any write)
        self._scheduled = False

    # --- membership ----------------------------------------------------------------------

    def join(self, session: ClientSession) -> None:
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

    def leave(self, session: ClientSession) -> None:
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
        """A delta was applied: send it with everything else of this event-loop turn."""
        pending = self.pending.get(pair)
        if pending is None:
            self.pending[pair] = [(seq, raw)]
        else:
            pending.append((seq, raw))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write every pending delta: one frame per group, built once per distinct content."""
        self._scheduled = False
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
            wire, count = built
            sent = 0
            for session in group.writers():
                if session.protocol.state is OPEN:
                    try:
                        session.transport.write(wire)
                    except (RuntimeError, OSError):
                        errors += 1
                        continue
                    sent += 1
            frames_out += sent
            bytes_out += sent * len(wire)
            deltas_out += sent * count
        counters["frames_built"] += len(frames)
        counters["frames_out"] += frames_out
        counters["bytes_out"] += bytes_out
        counters["deltas_out"] += deltas_out
        if errors:
            counters["write_errors"] += errors
