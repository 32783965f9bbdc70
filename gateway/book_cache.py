"""Cold ``/snapshot`` reads: one Redis read per pair at a time, reused for a moment.

A pair no local client follows has no replica, so each ``/snapshot`` of it costs a Lua book
read in Redis. Without a bound, N clients asking at once cost N reads. Here concurrent
requests for one pair share a single read (single flight), and its result answers every
request for ``ttl_s`` more (0: shared only while in flight). A failed read is shared by the
requests that waited for it and not kept. A REST snapshot is a point-in-time view, so an
answer up to ``ttl_s`` old is as good as one read now; live books come from the WebSocket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mdcore.codec import encode_snapshot
from mdcore.local_book import LocalBook

SWEEP_ABOVE = 256  # cached entries above which expired ones are dropped on the next insert


@dataclass(slots=True)
class CachedBook:
    """A book read from Redis (None: the pair has no stream) and its full snapshot, encoded once."""

    book: LocalBook | None
    expires: float
    _full: bytes | None = field(default=None, repr=False)

    def full_snapshot(self) -> bytes:
        if self._full is None:
            assert self.book is not None
            self._full = encode_snapshot(self.book.to_snapshot())
        return self._full


@dataclass(slots=True)
class CacheStats:
    reads: int = 0  # reads from Redis
    shared: int = 0  # requests that joined a read in flight
    hits: int = 0  # requests answered from a recent read


class BookCache:
    def __init__(
        self,
        load: Callable[[str], Awaitable[LocalBook | None]],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.ttl_s = ttl_s
        self._clock = clock
        self._kept: dict[str, CachedBook] = {}
        self._flights: dict[str, asyncio.Future[CachedBook]] = {}
        self.stats = CacheStats()

    async def get(self, pair: str) -> CachedBook:
        """The pair's book as Redis has it now (or had it at most ``ttl_s`` ago)."""
        kept = self._kept.get(pair)
        if kept is not None and self._clock() < kept.expires:
            self.stats.hits += 1
            return kept
        flight = self._flights.get(pair)
        if flight is None:
            flight = self._flights[pair] = asyncio.ensure_future(self._read(pair))
            flight.add_done_callback(_retrieve)
        else:
            self.stats.shared += 1
        # shielded: a requester that goes away does not cancel the read the others wait for
        return await asyncio.shield(flight)

    async def _read(self, pair: str) -> CachedBook:
        self.stats.reads += 1
        try:
            book = await self._load(pair)
        finally:
            self._flights.pop(pair, None)
        cached = CachedBook(book, self._clock() + self.ttl_s)
        if self.ttl_s > 0:
            if len(self._kept) >= SWEEP_ABOVE:
                now = self._clock()
                self._kept = {p: c for p, c in self._kept.items() if c.expires > now}
            self._kept[pair] = cached
        return cached


def _retrieve(flight: asyncio.Future[CachedBook]) -> None:
    """Mark a failed read's exception as seen even if every requester left before it ended."""
    if not flight.cancelled():
        flight.exception()
