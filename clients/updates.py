"""Book update notifications and the bounded stream that hands them to a consumer.

An update says "this pair's book just moved to (epoch, seq)"; the book itself is read
through :meth:`clients.BookClient.book`. A consumer that falls behind loses the oldest
notifications (counted), never the book's correctness, and never slows the receive loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from clients.stats import ClientStats

UpdateKind = Literal["snapshot", "delta"]


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """One applied snapshot or delta. Latencies are receipt time minus message time, in ns."""

    pair: str
    kind: UpdateKind
    epoch: str
    seq: int
    ts: int  # snapshot time or window close, ns since the epoch
    xts: int | None  # earliest exchange time in the window (deltas only)
    received_ns: int  # time.time_ns() when the frame arrived
    window_latency_ns: int  # received_ns - ts
    exchange_latency_ns: int | None  # received_ns - xts (deltas only)


class UpdateStream:
    """Updates in arrival order, at most ``maxsize`` buffered; iterate with ``async for``.

    Iteration ends when the stream or its client is closed. ``close()`` it (or use
    ``async with``) when done early, so it stops buffering.
    """

    __slots__ = ("_closed", "_items", "_maxsize", "_on_close", "_stats", "_wakeup")

    def __init__(
        self, maxsize: int, stats: ClientStats, on_close: Callable[[UpdateStream], None] | None = None
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._items: deque[BookUpdate] = deque()
        self._maxsize = maxsize
        self._stats = stats
        self._on_close = on_close
        self._wakeup = asyncio.Event()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def put(self, update: BookUpdate) -> None:
        """Buffer one update, dropping the oldest if full (called by the client)."""
        if self._closed:
            return
        if len(self._items) >= self._maxsize:
            self._items.popleft()
            self._stats.dropped_updates += 1
        self._items.append(update)
        self._wakeup.set()

    def close(self) -> None:
        """Stop buffering; a waiting consumer gets what is buffered, then the end."""
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        if self._on_close is not None:
            self._on_close(self)

    async def next(self, timeout: float | None = None) -> BookUpdate | None:
        """The next update, or None if ``timeout`` seconds pass first.

        Raises :class:`StopAsyncIteration` once the stream is closed and drained.
        """
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            except TimeoutError:
                return None
        return self._items.popleft()

    def __aiter__(self) -> UpdateStream:
        return self

    async def __anext__(self) -> BookUpdate:
        update = await self.next()
        assert update is not None  # no timeout: only an update or StopAsyncIteration
        return update

    async def __aenter__(self) -> UpdateStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
