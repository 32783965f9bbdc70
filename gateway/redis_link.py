"""The gateway's Redis side: one Pub/Sub connection for wanted pairs, plus reads of books and history.

The subscriber (``gateway.pubsub``) is watched: a PING every ``redis_ping_s`` and the link is
declared dead when nothing at all came back for ``redis_dead_s`` — a half-open connection
must not pass for a quiet, healthy one. After any loss it reconnects with capped backoff,
resubscribes every wanted pair (waiting for the confirmations), and only then asks the hub
to catch every replica up, because Pub/Sub dropped whatever was published meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool, SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, RedisError

from gateway.counters import Counters
from gateway.pubsub import PubSubClosedError, Subscriber
from mdcore.local_book import LocalBook
from mdcore.messages import StreamPosition
from mdcore.redis_layout import DELTA_FIELD, READ_BOOK_LUA, RedisLayout, parse_state, rebuild_book

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0
SUBSCRIBE_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 32  # defaults of GatewayConfig.redis_max_connections, …
POOL_WAIT_S = 1.0  # … redis_pool_wait_s …
MAX_HISTORY_READ = 1000  # … and max_history_read


class BoundedPool(BlockingConnectionPool):
    """At most ``max_connections`` connections; a read waits ``timeout`` s for one, then fails.

    The failure is :class:`MaxConnectionsError` (a ``RedisError``), so that callers can tell
    "too busy, retry soon" (REST: 503 with ``Retry-After``) from "Redis is unreachable".
    """

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)
        except RedisConnectionError as exc:
            if isinstance(exc.__cause__, TimeoutError):  # the wait for a free connection ran out
                raise MaxConnectionsError(
                    f"all {self.max_connections} Redis connections busy for {self.timeout}s"
                ) from exc
            raise


class RedisLink:
    def __init__(
        self,
        url: str,
        layout: RedisLayout,
        counters: Counters,
        on_message: Callable[[str, bytes], None],
        on_reconnected: Callable[[], Awaitable[None]],
        ping_s: float = 1.0,
        dead_s: float = 3.0,
    ) -> None:
        self.layout = layout
        self.counters = counters
        self._url = url
        self.client = aioredis.Redis.from_pool(
            BoundedPool.from_url(
                url, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S,
                socket_connect_timeout=5.0, socket_timeout=5.0,
            )
        )  # fmt: skip
        self.max_history_read = MAX_HISTORY_READ
        self._read_book = self.client.register_script(READ_BOOK_LUA)
        self._on_message = on_message
        self._on_reconnected = on_reconnected
        self._ping_s = ping_s
        self._dead_s = dead_s
        self._wanted: set[str] = set()
        self._sub: Subscriber | None = None
        self._channel_prefix = layout.channel_prefix().encode()
        self._prefix_len = len(self._channel_prefix)
        self.up = False
        self.down_since: float | None = time.monotonic()

    # --- subscriptions -------------------------------------------------------------------

    def _channel(self, pair: str) -> bytes:
        return self._channel_prefix + pair.encode()

    async def subscribe(self, pairs: list[str]) -> None:
        """Subscribe ``pairs`` and return once Redis confirmed (at once if the link is down:
        the reconnect subscribes every wanted pair and catches up)."""
        new = [p for p in pairs if p not in self._wanted]
        self._wanted.update(new)
        sub = self._sub
        if not new or sub is None or not self.up:
            return
        self.counters["channels_subscribed"] += len(new)
        try:
            await sub.subscribe([self._channel(p) for p in new], SUBSCRIBE_TIMEOUT_S)
        except (PubSubClosedError, TimeoutError, OSError) as exc:
            log.warning("subscribe %s failed (%s); the reconnect will resubscribe", new[:5], exc)
            sub.abort()

    def unsubscribe(self, pair: str) -> None:
        if pair not in self._wanted:
            return
        self._wanted.discard(pair)
        self.counters["channels_unsubscribed"] += 1
        sub = self._sub
        if sub is not None and self.up:
            with contextlib.suppress(PubSubClosedError):
                sub.unsubscribe([self._channel(pair)])

    @property
    def wanted(self) -> frozenset[str]:
        return frozenset(self._wanted)

    # --- the receive loop ----------------------------------------------------------------

    def _deliver(self, channel: bytes, data: bytes) -> None:
        if channel.startswith(self._channel_prefix):
            self._on_message(channel[self._prefix_len :].decode(), data)

    async def run(self) -> None:
        """Receive forever; reconnect with backoff after any failure."""
        delay = 0.1
        params = parse_url(self._url)
        while True:
            sub: Subscriber | None = None
            try:
                sub = await Subscriber.connect(
                    params.get("host", "localhost"),
                    int(params.get("port", 6379)),
                    self._deliver,
                    username=params.get("username"),
                    password=params.get("password"),
                    use_ssl=params.get("connection_class") is SSLConnection,
                )
                subscribed: set[str] = set()
                while missing := self._wanted - subscribed:  # pairs may be wanted meanwhile
                    subscribed |= missing
                    await sub.subscribe([self._channel(p) for p in sorted(missing)], SUBSCRIBE_TIMEOUT_S)
                sub.unsubscribe([self._channel(p) for p in sorted(subscribed - self._wanted)])
                self._sub, self.up, self.down_since = sub, True, None
                self.counters["redis_connects"] += 1
                log.info("redis link up (%d channels)", len(self._wanted))
                delay = 0.1
                await self._on_reconnected()
                await self._watch(sub)
            except (OSError, TimeoutError, PubSubClosedError, RedisError) as exc:
                log.warning("redis link: %s", exc or type(exc).__name__)
            except asyncio.CancelledError:
                self.up = False
                raise
            finally:
                if sub is not None:
                    sub.abort()
                if self.up:
                    self.counters["redis_disconnects"] += 1
                    log.warning("redis link lost; reconnecting")
                self.up, self._sub = False, None
                if self.down_since is None:
                    self.down_since = time.monotonic()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)

    async def _watch(self, sub: Subscriber) -> None:
        """Ping while the connection lives; return when it closes or stays silent too long.

        Silence is judged only while this process itself keeps time: if the event loop was
        starved (a long fan-out, a busy machine), the answer may be sitting unread in the
        socket, so a late wake-up postpones the verdict instead of killing a healthy link.
        """
        while not sub.closed.done():
            sub.ping()
            pinged = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(sub.closed), self._ping_s)
            now = time.monotonic()
            silent = now - sub.last_rx
            if now - pinged > 2 * self._ping_s and silent <= 3 * self._dead_s:
                self.counters["redis_watch_late"] += 1  # judged anyway after three times the deadline
                continue
            if silent > self._dead_s:
                self.counters["redis_dead_links"] += 1
                log.error("redis link silent for %.1fs: declaring it dead", silent)
                return

    # --- reads ---------------------------------------------------------------------------

    def bound_reads(self, max_connections: int, pool_wait_s: float, max_history_read: int) -> None:
        """Apply the settings that bound the load reads put on Redis (before the first read)."""
        pool = self.client.connection_pool
        pool.max_connections = max_connections
        if isinstance(pool, BlockingConnectionPool):
            pool.timeout = pool_wait_s
        self.max_history_read = max_history_read

    async def load_book(self, pair: str) -> LocalBook | None:
        """The pair's book at md_service's last seq (atomic read), or None if it has no stream."""
        loaded = rebuild_book(pair, await self._read_book(keys=self.layout.book_keys(pair)))
        return loaded[1] if loaded else None

    async def read_history(self, pair: str, epoch: str, seq: int) -> list[tuple[int, bytes]] | None:
        """Deltas after ``seq`` of ``epoch`` as ``(seq, bytes)``, or None if history does not reach.

        At most ``max_history_read`` deltas are read: a position further behind than that is
        answered None too (the caller sends a snapshot or reloads, which costs Redis less than
        the replay), so no request can make one read fetch a whole long history.
        """
        limit = self.max_history_read
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.layout.state_key(pair))
            pipe.xrange(self.layout.history_key(pair), min=f"({seq}-0", max=f"{seq + limit}", count=limit)
            flat_state, entries = await pipe.execute()
        state = parse_state([item for kv in flat_state.items() for item in kv])
        if state is None or state.epoch != epoch or state.seq - seq > limit:
            return None
        if not entries:
            return [] if state.seq == seq else None
        out = [(int(entry_id.split(b"-", 1)[0]), fields[DELTA_FIELD]) for entry_id, fields in entries]
        if out[0][0] != seq + 1:
            return None
        return out

    async def read_positions(self, pairs: list[str]) -> dict[str, StreamPosition | None]:
        """md_service's current ``(epoch, seq)`` of each pair (None: no stream), in one round trip."""
        async with self.client.pipeline(transaction=False) as pipe:
            for pair in pairs:
                pipe.hmget(self.layout.state_key(pair), "epoch", "seq")
            replies = await pipe.execute()
        out: dict[str, StreamPosition | None] = {}
        for pair, (epoch, seq) in zip(pairs, replies, strict=True):
            out[pair] = (
                StreamPosition(epoch.decode(), int(seq)) if epoch is not None and seq is not None else None
            )
        return out

    async def known_pairs(self) -> set[str]:
        return {p.decode() for p in await self.client.smembers(self.layout.pairs_key)}

    async def close(self) -> None:
        if self._sub is not None:
            self._sub.abort()
        await self.client.aclose()
