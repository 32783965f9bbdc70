"""The gateway's Redis side: one Pub/Sub connection for wanted pairs, plus reads of books and history.

When the link drops it reconnects with backoff, resubscribes every wanted pair and asks
the hub to catch every replica up, because Pub/Sub dropped whatever was published meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mdcore.local_book import LocalBook
from mdcore.redis_layout import DELTA_FIELD, READ_BOOK_LUA, RedisLayout, parse_state, rebuild_book

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0


class RedisLink:
    def __init__(
        self,
        url: str,
        layout: RedisLayout,
        on_message: Callable[[str, bytes], None],
        on_reconnected: Callable[[], Awaitable[None]],
    ) -> None:
        self.layout = layout
        self.client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=5.0,
            health_check_interval=5,  # PINGs expose a dead link
        )
        self._read_book = self.client.register_script(READ_BOOK_LUA)
        self._on_message = on_message
        self._on_reconnected = on_reconnected
        self._wanted: set[str] = set()
        self._pubsub: aioredis.client.PubSub | None = None
        self.up = False
        self.disconnects = 0
        self._prefix_len = len(layout.channel_prefix())

    async def subscribe(self, pair: str) -> None:
        self._wanted.add(pair)
        if self._pubsub is not None and self.up:
            try:
                await self._pubsub.subscribe(self.layout.delta_channel(pair))
            except RedisError as exc:  # the run loop notices the broken link and resubscribes
                log.warning("subscribe %s failed: %s", pair, exc)

    async def unsubscribe(self, pair: str) -> None:
        self._wanted.discard(pair)
        if self._pubsub is not None and self.up:
            try:
                await self._pubsub.unsubscribe(self.layout.delta_channel(pair))
            except RedisError as exc:
                log.warning("unsubscribe %s failed: %s", pair, exc)

    async def run(self) -> None:
        """Receive forever; reconnect with backoff after any failure."""
        delay = 0.1
        first = True
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.ping()  # connect now, so failure is seen here
                if self._wanted:
                    await pubsub.subscribe(*(self.layout.delta_channel(p) for p in self._wanted))
                self._pubsub, self.up = pubsub, True
                if not first:
                    log.info("redis link restored; catching replicas up")
                    await self._on_reconnected()
                first, delay = False, 0.1
                await self._receive(pubsub)
            except (RedisError, OSError) as exc:
                if self.up:
                    self.disconnects += 1
                    log.warning("redis link lost: %s", exc)
                self.up = False
                self._pubsub = None
                first = False
                await pubsub.aclose()
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    async def _receive(self, pubsub: aioredis.client.PubSub) -> None:
        prefix_len = self._prefix_len
        while True:
            if not pubsub.subscribed:  # nothing wanted: get_message would return at once
                await asyncio.sleep(0.05)
                await pubsub.ping()
                continue
            msg = await pubsub.get_message(timeout=1.0)
            if msg is not None and msg["type"] == "message":
                self._on_message(msg["channel"][prefix_len:].decode(), msg["data"])

    async def load_book(self, pair: str) -> LocalBook | None:
        """The pair's book at md_service's last seq (atomic read), or None if it has no stream."""
        loaded = rebuild_book(pair, await self._read_book(keys=self.layout.book_keys(pair)))
        return loaded[1] if loaded else None

    async def read_history(self, pair: str, epoch: str, seq: int) -> list[bytes] | None:
        """Deltas after ``seq`` of ``epoch``, or None if the history no longer reaches back to it."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.layout.state_key(pair))
            pipe.xrange(self.layout.history_key(pair), min=f"({seq}-0", max="+")
            flat_state, entries = await pipe.execute()
        flat = [item for kv in flat_state.items() for item in kv]
        state = parse_state(flat)
        if state is None or state.epoch != epoch:
            return None
        if not entries:
            return [] if state.seq == seq else None
        if entries[0][0] != f"{seq + 1}-0".encode():
            return None
        return [fields[DELTA_FIELD] for _id, fields in entries]

    async def known_pairs(self) -> set[str]:
        return {p.decode() for p in await self.client.smembers(self.layout.pairs_key)}

    async def close(self) -> None:
        await self.client.aclose()
