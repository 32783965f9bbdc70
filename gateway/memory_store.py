"""The stream store in memory: the third implementation of :class:`gateway.store.BookStore`.

For unit tests of the hub and for the contract suite: :class:`MemoryStreams` plays md_service
(a snapshot, a bounded history and a state per pair, like the Redis layout) and
:class:`MemoryStore` plays a gateway's link to it. Books and history are rebuilt with the same
pure functions as the Redis implementations (:func:`mdcore.redis_layout.rebuild_book`), and
the contract suite (``tests/contract``) holds all three to the same behaviour, so a test that
runs the hub on this store cannot drift from what Redis does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from gateway.store import OnMessage, OnResubscribed
from gateway.store_reads import history_answer
from mdcore.local_book import LocalBook
from mdcore.messages import StreamPosition
from mdcore.redis_layout import DELTA_FIELD, StoredState, rebuild_book

DEFAULT_HISTORY = 600


@dataclass
class _Stream:
    state: StoredState
    snapshot: bytes
    history: deque[tuple[int, bytes]] = field(default_factory=deque)


class MemoryStreams:
    """md_service's side in memory: what a window write leaves, and who is subscribed."""

    def __init__(self, history: int = DEFAULT_HISTORY) -> None:
        self.history = history
        self._streams: dict[str, _Stream] = {}
        self._stores: list[MemoryStore] = []

    def write(
        self, pair: str, epoch: str, seq: int, xseq: int, delta: bytes, snapshot: bytes | None = None
    ) -> None:
        """One window of one pair, as the window script writes it; ``delta`` b"": state only.

        A new epoch starts a new history (as in Redis); the first write must carry a snapshot.
        """
        stream = self._streams.get(pair)
        if stream is None or stream.state.epoch != epoch:
            if snapshot is None:
                raise ValueError(f"{pair}: the first write of epoch {epoch} needs a snapshot")
            stream = self._streams[pair] = _Stream(StoredState(epoch, seq, xseq, seq), snapshot)
        if delta:
            stream.history.append((seq, delta))
            while len(stream.history) > self.history:
                stream.history.popleft()
        snap_seq = stream.state.snap_seq
        if snapshot is not None:
            stream.snapshot, snap_seq = snapshot, seq
        stream.state = StoredState(epoch, seq, xseq, snap_seq)
        if delta:
            for store in self._stores:
                store.deliver(pair, delta)

    def connect(
        self, _cfg: object, _counters: object, on_message: OnMessage, on_resubscribed: OnResubscribed
    ) -> MemoryStore:
        """A :data:`gateway.store.StoreFactory`: ``Hub(cfg, store=streams.connect)``."""
        return MemoryStore(self, on_message, on_resubscribed)

    def forget(self, pair: str) -> None:
        """Lose a pair's stream (as a Redis that lost its data)."""
        self._streams.pop(pair, None)

    def _attach(self, store: MemoryStore) -> None:
        self._stores.append(store)

    def _detach(self, store: MemoryStore) -> None:
        if store in self._stores:
            self._stores.remove(store)

    def read_book_reply(self, pair: str) -> tuple[list[bytes], bytes | None, list[Any]]:
        """What :data:`~mdcore.redis_layout.READ_BOOK_LUA` would answer."""
        stream = self._streams.get(pair)
        if stream is None:
            return [], None, []
        s = stream.state
        flat = [b"epoch", s.epoch.encode(), b"seq", b"%d" % s.seq, b"xseq", b"%d" % s.xseq,
                b"snap_seq", b"%d" % s.snap_seq]  # fmt: skip
        after = [(b"%d-0" % n, [DELTA_FIELD, raw]) for n, raw in stream.history if n > s.snap_seq]
        return flat, stream.snapshot, after

    def state(self, pair: str) -> StoredState | None:
        stream = self._streams.get(pair)
        return stream.state if stream is not None else None

    def history_after(self, pair: str, seq: int, limit: int) -> list[tuple[int, bytes]]:
        stream = self._streams.get(pair)
        if stream is None:
            return []
        return [(n, raw) for n, raw in stream.history if n > seq][:limit]

    def pairs(self) -> set[str]:
        return set(self._streams)


class MemoryStore:
    """A gateway's link to :class:`MemoryStreams`. A test may set ``up`` False to play an outage."""

    def __init__(
        self, streams: MemoryStreams, on_message: OnMessage, on_resubscribed: OnResubscribed
    ) -> None:
        self.streams = streams
        self._on_message = on_message
        self._on_resubscribed = on_resubscribed
        self._wanted: set[str] = set()
        self.up = True
        self.down_since: float | None = None
        self.client: Any = None
        self.max_history_read = 1000
        self.history_reads = 0  # for tests: how often the hub went to "Redis" for history
        streams._attach(self)

    @property
    def wanted(self) -> frozenset[str]:
        return frozenset(self._wanted)

    async def subscribe(self, pairs: list[str]) -> None:
        self._wanted.update(pairs)

    def unsubscribe(self, pair: str) -> None:
        self._wanted.discard(pair)

    def deliver(self, pair: str, raw: bytes) -> None:
        if self.up and pair in self._wanted:
            self._on_message(pair, raw)

    async def run(self) -> None:
        await self._on_resubscribed(set(self._wanted))
        await asyncio.Event().wait()  # until cancelled

    async def load_book(self, pair: str) -> LocalBook | None:
        loaded = rebuild_book(pair, self.streams.read_book_reply(pair))
        return loaded[1] if loaded else None

    async def read_history(self, pair: str, epoch: str, seq: int) -> list[tuple[int, bytes]] | None:
        self.history_reads += 1
        limit = self.max_history_read
        entries = self.streams.history_after(pair, seq, limit)
        return history_answer(self.streams.state(pair), epoch, seq, limit, entries)

    async def read_positions(self, pairs: list[str]) -> dict[str, StreamPosition | None]:
        out: dict[str, StreamPosition | None] = {}
        for pair in pairs:
            state = self.streams.state(pair)
            out[pair] = StreamPosition(state.epoch, state.seq) if state is not None else None
        return out

    async def known_pairs(self) -> set[str]:
        return self.streams.pairs()

    def bound_reads(self, max_connections: int, pool_wait_s: float, max_history_read: int) -> None:
        self.max_history_read = max_history_read

    def health(self) -> dict[str, Any]:
        return {"mode": "memory", "nodes": {"memory": {"up": self.up, "pairs": len(self._wanted)}}}

    async def close(self) -> None:
        self.streams._detach(self)
