"""The hub: replicas of wanted pairs, who subscribes to what, and the fan-out itself.

Each delta is fanned out as the exact bytes md_service published (encoded once), with one
synchronous ``broadcast`` to every subscriber that keeps up. A pair's Redis subscription
exists only while a local client wants it, plus a short linger to avoid churn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from redis.exceptions import RedisError
from websockets.asyncio.server import broadcast

from gateway.config import GatewayConfig
from gateway.redis_link import RedisLink
from gateway.replica import PairReplica
from gateway.session import ClientSession
from mdcore.codec import encode_snapshot
from mdcore.redis_layout import RedisLayout

log = logging.getLogger(__name__)

MAX_CATCH_UP_ROUNDS = 5


class Hub:
    def __init__(self, cfg: GatewayConfig) -> None:
        self.cfg = cfg
        self.replicas: dict[str, PairReplica] = {}
        self.subscribers: dict[str, set[ClientSession]] = {}
        self.sessions: set[ClientSession] = set()
        self.counters: Counter[str] = Counter()
        self.link = RedisLink(
            cfg.redis_url, RedisLayout(cfg.redis_prefix), self.on_message, self.catch_up_all
        )
        self._linger: dict[str, asyncio.TimerHandle] = {}
        self._catching_up: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._offered: set[str] = set(cfg.pairs)
        self._offered_at = 0.0

    # --- pairs on offer ----------------------------------------------------------------

    async def offered_pairs(self) -> set[str]:
        """Configured pairs plus every pair md_service has a stream for (cached for a second)."""
        if time.monotonic() - self._offered_at > 1.0:
            try:
                self._offered = set(self.cfg.pairs) | await self.link.known_pairs()
                self._offered_at = time.monotonic()
            except (RedisError, OSError) as exc:
                log.warning("cannot list pairs: %s", exc)
        return self._offered

    # --- subscriptions -------------------------------------------------------------------

    async def subscribe(self, session: ClientSession, pairs: tuple[str, ...]) -> None:
        """Add ``session`` to each pair; live replicas send their snapshot at once."""
        for pair in pairs:
            if pair in session.pairs:
                self.send_snapshot(session, pair)  # a repeated subscribe re-synchronises
                continue
            session.pairs.add(pair)
            self.subscribers.setdefault(pair, set()).add(session)
            timer = self._linger.pop(pair, None)
            if timer is not None:
                timer.cancel()
            replica = self.replicas.get(pair)
            if replica is None:
                replica = self.replicas[pair] = PairReplica(pair, self._fan_out, self._reset)
                await self.link.subscribe(pair)
                self._start_catch_up(replica)
            elif replica.live:
                self.send_snapshot(session, pair)

    def unsubscribe(self, session: ClientSession, pairs: tuple[str, ...] | set[str]) -> None:
        for pair in list(pairs):
            session.pairs.discard(pair)
            session.missed.discard(pair)
            subs = self.subscribers.get(pair)
            if subs is None:
                continue
            subs.discard(session)
            if not subs and pair not in self._linger:
                loop = asyncio.get_running_loop()
                self._linger[pair] = loop.call_later(self.cfg.linger_s, self._drop_pair, pair)

    def _drop_pair(self, pair: str) -> None:
        self._linger.pop(pair, None)
        if self.subscribers.get(pair):
            return
        self.subscribers.pop(pair, None)
        self.replicas.pop(pair, None)
        self._spawn(self.link.unsubscribe(pair))

    def send_snapshot(self, session: ClientSession, pair: str) -> bool:
        replica = self.replicas.get(pair)
        if replica is None or not replica.live or replica.local is None:
            return False  # it will come when the replica goes live
        session.send(encode_snapshot(replica.local.to_snapshot()))
        session.missed.discard(pair)
        self.counters["snapshots_sent"] += 1
        return True

    # --- the stream ----------------------------------------------------------------------

    def on_message(self, pair: str, raw: bytes) -> None:
        replica = self.replicas.get(pair)
        if replica is None:
            return
        self.counters["redis_messages"] += 1
        try:
            must_catch_up = replica.offer(raw)
        except ValueError as exc:  # not a delta: md_service and gateway disagree on the protocol
            self.counters["bad_redis_messages"] += 1
            log.error("%s: undecodable message from Redis: %s", pair, exc)
            return
        if must_catch_up:
            self._start_catch_up(replica)

    def _fan_out(self, replica: PairReplica, raw: bytes) -> None:
        pair = replica.pair
        receivers = []
        for session in self.subscribers.get(pair, ()):
            if session.recovered():
                session.lagging = False
                for missed in sorted(session.missed):
                    self.send_snapshot(session, missed)  # includes this delta for ``pair``
                self.counters["conflations"] += 1
                continue
            if session.admits_delta(pair):
                receivers.append(session.conn)
            else:
                self.counters["deltas_skipped_lagging"] += 1
        broadcast(receivers, raw, text=True)
        self.counters["frames_out"] += len(receivers)

    def _reset(self, replica: PairReplica) -> None:
        for session in self.subscribers.get(replica.pair, ()):
            if session.lagging:
                session.missed.add(replica.pair)
            else:
                self.send_snapshot(session, replica.pair)

    def _start_catch_up(self, replica: PairReplica) -> None:
        if replica.pair in self._catching_up:
            return
        self._catching_up.add(replica.pair)
        self._spawn(self._catch_up(replica))

    async def _catch_up(self, replica: PairReplica) -> None:
        try:
            for _ in range(MAX_CATCH_UP_ROUNDS):
                await replica.catch_up(self.link.read_history, self.link.load_book)
                if not replica.needs_catch_up:
                    return
            log.error("%s: still behind after %d catch-up rounds", replica.pair, MAX_CATCH_UP_ROUNDS)
        except (RedisError, OSError) as exc:  # Redis went away; the reconnect path catches up again
            log.warning("%s: catch-up failed: %s", replica.pair, exc)
        finally:
            self._catching_up.discard(replica.pair)

    async def catch_up_all(self) -> None:
        for replica in list(self.replicas.values()):
            self._start_catch_up(replica)

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
