"""A thread on Redis Pub/Sub that records every delta md_service publishes, with its arrival time.

Subscribed (sharded, ``SSUBSCRIBE``) to every pair's delta channel, it sees exactly what
gateways see.
When Redis is killed it keeps trying; redis-py reconnects and subscribes again once Redis
is back (a restarted Redis holds nothing, so nothing published meanwhile is missed:
nothing could be published).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import redis

from bookcast.chaos.publications import PublicationLog
from mdcore.codec import decode_delta
from mdcore.redis_layout import RedisLayout


class PubSubRecorder(threading.Thread):
    """Feeds a :class:`PublicationLog` (guard reads with :attr:`lock`)."""

    def __init__(
        self, redis_url: str, layout: RedisLayout, pairs: Sequence[str], log: PublicationLog | None = None
    ) -> None:
        super().__init__(name="chaos-recorder", daemon=True)
        self.log = log or PublicationLog()
        self.lock = threading.Lock()
        self.undecodable = 0
        self.reconnects = 0
        self._client = redis.Redis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=1.0)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.ssubscribe(*(layout.delta_channel(pair) for pair in pairs))
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                msg = self._pubsub.get_message(timeout=0.1)
            except (redis.ConnectionError, redis.TimeoutError):
                self.reconnects += 1
                self._halt.wait(0.1)  # Redis is down; get_message reconnects and resubscribes
                continue
            if msg is None or msg["type"] != "smessage":
                continue
            now = time.monotonic()
            raw = msg["data"]
            try:
                delta = decode_delta(raw)
            except Exception:
                self.undecodable += 1
                continue
            with self.lock:
                self.log.add(delta.pair, delta.epoch, delta.seq, hash(raw), now)

    def close(self) -> None:
        self._halt.set()
        self.join(5)
        self._pubsub.close()
        self._client.close()
