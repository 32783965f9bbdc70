"""App-level pings waiting for their ``pong``: one future per request id.

Why a module of its own: three places touch a ping (the caller awaiting it, the paced
sender that knows when it really left, the frame reader that sees the answer), and the
round trip must be timed from when it left, not from when it was queued behind the op budget.
"""

from __future__ import annotations

import asyncio
import time

from clients.errors import ClientError


class PendingPings:
    """The pings awaited by ``BookClient.ping()``, by request id."""

    def __init__(self) -> None:
        self._futures: dict[int, asyncio.Future[float]] = {}
        self._sent: dict[int, float] = {}  # ping id -> perf_counter() when it left (after pacing)

    def expect(self, request_id: int) -> asyncio.Future[float]:
        """A future resolved with ``perf_counter()`` when the pong of ``request_id`` arrives."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = future
        return future

    def sent(self, request_id: object) -> None:
        """The ping left now (called by the sender, after pacing), if it is still awaited."""
        if request_id in self._futures:
            self._sent[request_id] = time.perf_counter()  # type: ignore[index]

    def forget(self, request_id: int, queued_at: float) -> float:
        """Stop awaiting ``request_id``; returns when it left (``queued_at`` if it never did)."""
        self._futures.pop(request_id, None)
        return self._sent.pop(request_id, queued_at)

    def answered(self, request_id: object) -> None:
        future = self._futures.get(request_id)  # type: ignore[arg-type]
        if future is not None and not future.done():
            future.set_result(time.perf_counter())

    def refused(self, request_id: object, code: str, message: str) -> None:
        """The gateway answered ``request_id`` with an error: a waiting ping raises it."""
        future = self._futures.get(request_id) if type(request_id) is int else None
        if future is not None and not future.done():
            future.set_exception(ClientError(f"gateway refused ping: {code}: {message}"))

    def fail_all(self, exc: Exception) -> None:
        """The connection or the client ended: every waiting ping raises ``exc``."""
        for future in self._futures.values():
            if not future.done():
                future.set_exception(exc)
        self._futures.clear()
