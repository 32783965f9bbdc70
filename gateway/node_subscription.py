"""One watched subscriber connection to one Redis node, for the pairs routed to it.

The subscriber (:mod:`gateway.pubsub`) is watched: a PING every ``ping_s`` and the connection
is declared dead when nothing at all came back for ``dead_s``: a half-open connection must
not pass for a quiet, healthy one. After any loss it reconnects with capped backoff,
resubscribes every pair it carries (waiting for the confirmations), and only then asks the
hub to catch those pairs up, because Pub/Sub dropped whatever was published meanwhile.

A single Redis has one of these (:mod:`gateway.redis_link`); a Redis Cluster one per primary
(:mod:`gateway.cluster_link`), each carrying the pairs whose slots that node owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from redis.exceptions import RedisError

from gateway.core.counters import Counters
from gateway.core.resp import RespError
from gateway.pubsub import PubSubClosedError, Subscriber
from gateway.store import OnMessage, OnResubscribed

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0
SUBSCRIBE_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class NodeAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    use_ssl: bool = False

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class NodeSubscription:
    """Sharded subscriptions of some pairs on one node; ``channel_of`` and ``slot_of`` name
    a pair's channel and the group it must be subscribed with (channels of one slot)."""

    def __init__(
        self,
        address: NodeAddress,
        counters: Counters,
        channel_of: Callable[[str], bytes],
        slot_of: Callable[[str], int],
        on_message: OnMessage,
        on_resubscribed: OnResubscribed,
        ping_s: float = 1.0,
        dead_s: float = 3.0,
        on_dropped: Callable[[str], None] | None = None,
        on_failed: Callable[[Exception], None] | None = None,
    ) -> None:
        self.address = address
        self.counters = counters
        self._channel_of = channel_of
        self._slot_of = slot_of
        self._on_message = on_message
        self._on_resubscribed = on_resubscribed
        self._on_dropped = on_dropped
        self._on_failed = on_failed
        self._ping_s = ping_s
        self._dead_s = dead_s
        self.pairs: set[str] = set()
        self._by_channel: dict[bytes, str] = {}
        self._sub: Subscriber | None = None
        self.up = False
        self.ready = asyncio.Event()  # set while up (every carried pair confirmed)
        self.down_since: float | None = time.monotonic()
        self.last_error = ""

    def _groups(self, pairs: Iterable[str]) -> list[list[bytes]]:
        groups: dict[int, list[bytes]] = {}
        for pair in sorted(pairs):
            groups.setdefault(self._slot_of(pair), []).append(self._channel_of(pair))
        return list(groups.values())

    async def subscribe(self, pairs: list[str]) -> None:
        """Carry ``pairs``; return once the node confirmed (at once while the connection is down:
        the reconnect subscribes every pair it carries and catches up)."""
        await self.confirm(self.carry(pairs))

    def carry(self, pairs: list[str]) -> list[str]:
        """Take ``pairs`` on (no wait); returns those that were new here, for :meth:`confirm`."""
        new = [p for p in pairs if p not in self.pairs]
        for pair in new:
            self.pairs.add(pair)
            self._by_channel[self._channel_of(pair)] = pair
        return new

    async def confirm(self, new: list[str]) -> None:
        """Subscribe pairs :meth:`carry` took on, if connected; the reconnect does it otherwise."""
        sub = self._sub
        if not new or sub is None or not self.up:
            return
        self.counters["channels_subscribed"] += len(new)
        try:
            for channels in self._groups(new):
                await sub.subscribe(channels, SUBSCRIBE_TIMEOUT_S)
        except (PubSubClosedError, TimeoutError, OSError, RespError) as exc:
            log.warning("%s: subscribe %s failed (%s); reconnecting", self.address, new[:5], exc)
            sub.abort()

    def unsubscribe(self, pairs: Iterable[str]) -> None:
        dropped = [p for p in pairs if p in self.pairs]
        for pair in dropped:
            self.pairs.discard(pair)
            self._by_channel.pop(self._channel_of(pair), None)
        self.counters["channels_unsubscribed"] += len(dropped)
        sub = self._sub
        if dropped and sub is not None and self.up:
            with contextlib.suppress(PubSubClosedError):
                for channels in self._groups(dropped):
                    sub.unsubscribe(channels)

    def _deliver(self, channel: bytes, data: bytes) -> None:
        pair = self._by_channel.get(channel)
        if pair is not None:
            self._on_message(pair, data)

    def _dropped(self, channel: bytes) -> None:
        """The node ended a subscription itself (its slot moved): those messages are lost."""
        pair = self._by_channel.get(channel)
        if pair is not None and self._on_dropped is not None:
            self.counters["channels_dropped_by_server"] += 1
            self._on_dropped(pair)

    async def run(self) -> None:
        """Receive until cancelled; reconnect with backoff after any failure."""
        delay = 0.1
        a = self.address
        while True:
            sub: Subscriber | None = None
            try:
                sub = await Subscriber.connect(
                    a.host, a.port, self._deliver, on_dropped=self._dropped,
                    username=a.username, password=a.password, use_ssl=a.use_ssl,
                )  # fmt: skip
                subscribed: set[str] = set()
                while missing := self.pairs - subscribed:  # pairs may be wanted meanwhile
                    subscribed |= missing
                    for channels in self._groups(missing):
                        await sub.subscribe(channels, SUBSCRIBE_TIMEOUT_S)
                for channels in self._groups(subscribed - self.pairs):
                    sub.unsubscribe(channels)
                self._sub, self.up, self.down_since, self.last_error = sub, True, None, ""
                self.ready.set()
                self.counters["redis_connects"] += 1
                log.info("redis link to %s up (%d channels)", a, len(self.pairs))
                delay = 0.1
                await self._on_resubscribed(set(self.pairs))
                await self._watch(sub)
            except (OSError, TimeoutError, PubSubClosedError, RedisError, RespError) as exc:
                self.last_error = str(exc) or type(exc).__name__
                log.warning("redis link to %s: %s", a, self.last_error)
                if self._on_failed is not None:
                    self._on_failed(exc)
            except asyncio.CancelledError:
                self.up = False
                raise
            finally:
                if sub is not None:
                    sub.abort()
                if self.up:
                    self.counters["redis_disconnects"] += 1
                    log.warning("redis link to %s lost; reconnecting", a)
                self.up, self._sub = False, None
                self.ready.clear()
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
                log.error("redis link to %s silent for %.1fs: declaring it dead", self.address, silent)
                return

    def abort(self) -> None:
        if self._sub is not None:
            self._sub.abort()

    def health(self) -> dict[str, object]:
        down = None if self.down_since is None else round(time.monotonic() - self.down_since, 1)
        return {"up": self.up, "down_s": down, "pairs": len(self.pairs), "error": self.last_error or None}
