"""Writes md_service's full status to Redis on a thread of its own, latest status wins.

The window loop must never wait on a status write: on a Redis Cluster whose node holding the
status key is down, redis-py's client retries with backoff for about as long as the failover
takes, and a synchronous write there stalled every partition's windows, not only those of the
node that was down. The loop posts the status and goes on; the thread writes whatever is
newest, and a status that could not be written is simply replaced by the next one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)


class StatusMailbox:
    """One slot, one writer thread: :meth:`post` never blocks."""

    def __init__(self, write: Callable[[bytes, float], None]) -> None:
        self._write = write
        self._pending: tuple[bytes, float] | None = None
        self._wake = threading.Condition()
        self._closed = False
        self.written = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="md-status-writer", daemon=True)
        self._thread.start()

    def post(self, payload: bytes, ttl_s: float) -> None:
        with self._wake:
            self._pending = (payload, ttl_s)
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and not self._closed:
                    self._wake.wait()
                if self._pending is None:  # closed, and the last status is written
                    return
                payload, ttl_s = self._pending
                self._pending = None
            try:
                self._write(payload, ttl_s)
                self.written += 1
            except (redis.RedisError, OSError) as exc:  # the window writes report Redis' trouble
                self.failed += 1
                log.debug("status write failed: %s", exc)

    def close(self, timeout: float = 2.0) -> None:
        """Write what is still posted (bounded by ``timeout``), then end the thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout)
