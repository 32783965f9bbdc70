"""md_service's side of Redis: load a pair's stream, write a window (see window_script)."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from md_service.pair_stream import WindowOutput
from md_service.window_script import WRITE_WINDOW_LUA, parse_rejected, window_script_args
from mdcore.local_book import LocalBook
from mdcore.redis_layout import READ_BOOK_LUA, RedisLayout, StoredState, rebuild_book


class RedisStore:
    """Synchronous: md_service's loop is single-threaded and must not run ahead of Redis."""

    def __init__(self, url: str, layout: RedisLayout, history: int) -> None:
        self.layout = layout
        self.history = history
        self.client = redis.Redis.from_url(
            url, socket_timeout=5.0, socket_connect_timeout=5.0, health_check_interval=10
        )
        self._read_book = self.client.register_script(READ_BOOK_LUA)
        self._write_window = self.client.register_script(WRITE_WINDOW_LUA)

    def ping(self) -> bool:
        return bool(self.client.ping())

    def load(self, pair: str) -> tuple[StoredState, LocalBook] | None:
        """The pair's stored book at its last published seq, or None if it has no stream."""
        reply = self._read_book(keys=self.layout.book_keys(pair))
        return rebuild_book(pair, reply)

    def write_window(self, outputs: Sequence[WindowOutput]) -> dict[str, str]:
        """Write one window atomically; returns the pairs that were fenced off, with the reason."""
        keys, argv = window_script_args(self.layout, outputs, self.history)
        return parse_rejected(self._write_window(keys=keys, args=argv))

    def close(self) -> None:
        self.client.close()
