"""The hub: the wanted pairs' channels, the sessions, snapshots, and the stream's way in.

Each wanted pair has one :class:`gateway.pair_channel.PairChannel` (its replica, followers,
owed snapshots, claims, linger and audit marks), and the hub is the only code that changes
it: the rest of the gateway reads :attr:`Hub.channels` and calls the hub's methods. A
pair's Redis subscription and replica exist only while a local client wants the pair, plus
a short linger to avoid churn. Every applied delta goes to the fan-out (``gateway.fanout``)
as the bytes md_service published. Subscribing, with or without ``since`` recovery, lives
in ``gateway.subscriptions``; stale clients in ``gateway.slow``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Coroutine, Mapping
from collections.abc import Set as AbstractSet
from types import MappingProxyType
from typing import Any, Protocol

from redis.exceptions import RedisError

from gateway.config import GatewayConfig
from gateway.core.audit_rule import missed_something
from gateway.core.counters import Counters
from gateway.core.frame_clock import FrameClock
from gateway.core.overload import Overload
from gateway.core.replica import PairReplica, ReplicaState
from gateway.fanout import FanOut
from gateway.gc_policy import GcPolicy
from gateway.pair_channel import PairChannel
from gateway.session import Subscriber
from gateway.store import BookStore, StoreFactory
from gateway.store_factory import open_store
from mdcore.errors import DecodeError, IntegrityError
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, StreamPosition

log = logging.getLogger(__name__)

MAX_CATCH_UP_ROUNDS = 5
CATCH_UP_CONCURRENCY = 16
MAX_RETRY_S = 10.0


class StreamListener(Protocol):
    """Another consumer of the replicas' streams (a protocol dialect, see gateway.dialect_port)."""

    def on_delta(self, pair: str, delta: Delta) -> None:
        """``delta`` was applied to the pair's replica (in order, gap-free); decoded once, here."""

    def on_reset(self, pair: str, local: LocalBook) -> None: ...


class Hub:
    def __init__(
        self,
        cfg: GatewayConfig,
        counters: Counters | None = None,
        store: StoreFactory = open_store,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self._clock = clock  # the replicas' and the audit's (tests pass their own)
        self.counters = counters or Counters()
        self._channels: dict[str, PairChannel] = {}
        self.channels: Mapping[str, PairChannel] = MappingProxyType(self._channels)  # read-only view
        self._sessions: set[Subscriber] = set()
        self.listeners: list[StreamListener] = []
        self.gc_policy: GcPolicy | None = None  # set by the server
        self.fanout = FanOut(
            self.counters, self._on_batch, FrameClock(cfg.frame_quiet_ms / 1000, cfg.frame_hold_ms / 1000)
        )
        self.link: BookStore = store(cfg, self.counters, self.on_message, self.catch_up)
        self.shutting_down = False
        self.overload = Overload(
            cfg.overload_enter_ms / 1000, cfg.overload_leave_ms / 1000, cfg.overload_hold_s,
            min_busy=cfg.overload_min_busy,
        )  # fmt: skip  # fed by gateway.loop_lag (the server runs it)
        self._catch_up_slots = asyncio.Semaphore(CATCH_UP_CONCURRENCY)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._offered: set[str] = set(cfg.pairs)
        self._offered_at = 0.0

    @property
    def sessions(self) -> AbstractSet[Subscriber]:
        """The open sessions (read-only: :meth:`open_session` and :meth:`close_session` change it)."""
        return self._sessions

    def replica(self, pair: str) -> PairReplica | None:
        channel = self._channels.get(pair)
        return channel.replica if channel is not None else None

    def subscriber_count(self) -> int:
        return sum(len(channel.subscribers) for channel in self._channels.values())

    # --- pairs on offer ------------------------------------------------------------------

    async def offered_pairs(self) -> set[str]:
        """Configured pairs plus every pair md_service has a stream for (cached for a second)."""
        if time.monotonic() - self._offered_at > 1.0:
            self._offered_at = time.monotonic()
            try:
                self._offered = set(self.cfg.pairs) | await self.link.known_pairs()
            except (RedisError, OSError) as exc:
                self.counters["redis_read_errors"] += 1
                log.warning("cannot list pairs: %s", exc)
        return self._offered

    # --- sessions ------------------------------------------------------------------------

    def open_session(self, session: Subscriber) -> None:
        self._sessions.add(session)
        self.counters["connections_opened"] += 1
        if self.gc_policy is not None:
            self.gc_policy.opened()

    def close_session(self, session: Subscriber) -> None:
        session.closing()
        self.fanout.leave(session)
        self._sessions.discard(session)
        self.drop_pairs(session, set(session.pairs))
        if self.gc_policy is not None:
            self.gc_policy.closed()

    # --- wanting and dropping pairs --------------------------------------------------------

    def claim(self, pairs: list[str]) -> None:
        """Keep each pair's channel (made if missing) while a subscribe in progress needs it."""
        for pair in pairs:
            channel = self._channels.get(pair)
            if channel is None:
                replica = PairReplica(pair, self._on_delta, self._on_live, self.cfg.recent_deltas,
                                      self._clock)  # fmt: skip
                channel = self._channels[pair] = PairChannel(replica)
            channel.stop_linger()
            channel.claim()

    def unclaim(self, pairs: list[str]) -> None:
        for pair in pairs:
            channel = self._channels.get(pair)
            if channel is not None:
                channel.unclaim()
                self._maybe_linger(channel)

    async def want_pairs(self, pairs: list[str]) -> None:
        """Make sure each (claimed) pair's channel has a confirmed Redis subscription and a replica
        catching up."""
        new = [c for c in (self._channels.get(p) for p in pairs) if c is not None and not c.streaming]
        if not new:
            return
        for channel in new:
            channel.streaming = True
        await self.link.subscribe([c.pair for c in new])  # history is read only after Redis confirmed
        for channel in new:
            if self._channels.get(channel.pair) is channel:
                self.start_catch_up(channel)

    def follow(self, session: Subscriber, pair: str) -> None:
        """``session`` follows ``pair`` (claimed by the subscribe that calls this, so it has a channel)."""
        session.pairs.add(pair)
        self._channels[pair].follow(session)

    def drop_pairs(self, session: Subscriber, pairs: set[str] | tuple[str, ...]) -> None:
        for pair in pairs:
            session.pairs.discard(pair)
            session.forget_pair(pair)
            channel = self._channels.get(pair)
            if channel is not None:
                channel.unfollow(session)
                self._maybe_linger(channel)

    def _maybe_linger(self, channel: PairChannel) -> None:
        if not channel.wanted:
            channel.linger(self.cfg.linger_s, self._drop_pair)

    def _drop_pair(self, pair: str) -> None:
        channel = self._channels.get(pair)
        if channel is None:
            return
        channel.stop_linger()
        if channel.wanted:
            return
        del self._channels[pair]
        self.fanout.drop_pending(pair)
        if channel.streaming:
            self.link.unsubscribe(pair)

    # --- snapshots owed ------------------------------------------------------------------

    def owe_snapshot(self, session: Subscriber, pair: str) -> None:
        """``session`` gets the pair's snapshot the moment its replica is live."""
        channel = self._channels.get(pair)
        if channel is not None:
            channel.owe(session)

    def take_owed(self, session: Subscriber, pair: str) -> bool:
        """Whether a snapshot of the pair was owed to ``session``; it is no longer (it went stale:
        its healing owes it instead)."""
        channel = self._channels.get(pair)
        return channel is not None and channel.take_owed(session)

    def recently_fixed(self, pair: str, now: float) -> bool:
        """Whether an audit found the pair's replica behind in the last two audit periods."""
        channel = self._channels.get(pair)
        return channel is not None and channel.recently_fixed(now, self.cfg.audit_s)

    # --- snapshots -----------------------------------------------------------------------

    def send_snapshot(self, session: Subscriber, pair: str) -> bool:
        """Send the replica's snapshot now, or owe it (stale client, or replica not live yet)."""
        data = self.snapshot_for(session, pair)
        return data is not None and session.send(data)

    def snapshot_for(self, session: Subscriber, pair: str) -> bytes | None:
        """The snapshot ``session`` should get now (counted as sent), or None if it is owed."""
        if session.lagging:
            session.owe_snapshot(pair)
            return None
        channel = self._channels.get(pair)
        if channel is None:
            return None
        replica = channel.replica
        if not replica.live:
            channel.owe(session)
            return None
        try:
            data = replica.snapshot_bytes()
        except IntegrityError as exc:
            log.error("%s; reloading the replica", exc)
            self.counters["replica_integrity_errors"] += 1
            channel.owe(session)
            replica.invalidate()
            self.start_catch_up(channel)
            return None
        self.counters["snapshots_sent"] += 1
        self.fanout.floor(session, pair, replica.local.seq)  # type: ignore[union-attr]  # live: has a book
        return data

    async def wait_live(self, pair: str, timeout: float) -> None:
        """Return once the pair's replica is live, or after ``timeout`` (whichever is first)."""
        channel = self._channels.get(pair)
        if channel is not None:
            await channel.wait_live(timeout)

    # --- the stream ----------------------------------------------------------------------

    def on_message(self, pair: str, raw: bytes) -> None:
        channel = self._channels.get(pair)
        if channel is None:
            return
        replica = channel.replica
        self.counters["redis_messages"] += 1
        gaps = replica.gaps
        try:
            must_catch_up = replica.offer(raw)
        except DecodeError as exc:  # not a delta: md_service and gateway disagree
            self.counters["redis_bad_messages"] += 1
            log.error("%s: undecodable message from Redis: %r", pair, exc)
            return
        if must_catch_up:
            self.counters["replica_gaps"] += replica.gaps - gaps
            self.start_catch_up(channel)

    def _on_delta(self, replica: PairReplica, delta: Delta, raw: bytes) -> None:
        self.counters["deltas_in"] += 1
        self.fanout.queue(replica.pair, delta.seq, raw)
        for listener in self.listeners:
            listener.on_delta(replica.pair, delta)

    def _on_batch(self, batch: dict[str, list[tuple[int, bytes]]]) -> None:
        """Remember how far each pair's deltas went out (what a client going stale has seen)."""
        channels = self._channels
        for pair, entries in batch.items():
            channel = channels.get(pair)
            if channel is None:
                continue
            local = channel.replica.local
            if local is not None and local.epoch is not None:
                channel.replica.note_sent(StreamPosition(local.epoch, entries[-1][0]))

    def _on_live(self, replica: PairReplica, reset: bool) -> None:
        pair = replica.pair
        channel = self._channels.get(pair)
        if channel is None or channel.replica is not replica:
            return  # dropped meanwhile
        channel.wake_live_waiters()
        if reset and replica.local is not None:
            for listener in self.listeners:
                listener.on_reset(pair, replica.local)
        if reset:
            # Deltas still pending are from before the reload; every subscriber gets the new book.
            self.fanout.drop_pending(pair)
            replica.note_sent(replica.position)
            channel.take_all_owed()
            targets = list(channel.subscribers)
        else:
            targets = channel.take_all_owed()
        for session in targets:
            if session.pairs and pair in session.pairs:
                self.send_snapshot(session, pair)

    def start_catch_up(self, channel: PairChannel) -> None:
        if channel.catching_up:
            return
        channel.catching_up = True
        self.spawn(self._catch_up(channel))

    async def _catch_up(self, channel: PairChannel) -> None:
        replica = channel.replica
        ok = False
        try:
            async with self._catch_up_slots:
                for _ in range(MAX_CATCH_UP_ROUNDS):
                    if self._channels.get(channel.pair) is not channel:
                        return  # dropped meanwhile
                    reloads, fills = replica.reloads, replica.history_fills
                    await replica.catch_up(self.link.read_history, self.link.load_book)
                    self.counters["replica_reloads"] += replica.reloads - reloads
                    self.counters["replica_history_fills"] += replica.history_fills - fills
                    if not replica.needs_catch_up:
                        ok = replica.live or replica.state is ReplicaState.NO_DATA
                        return
                log.error("%s: still behind after %d catch-up rounds", replica.pair, MAX_CATCH_UP_ROUNDS)
        except (RedisError, OSError) as exc:  # Redis went away; the reconnect path catches up again
            self.counters["redis_read_errors"] += 1
            log.warning("%s: catch-up failed: %s", replica.pair, exc)
        except Exception:  # a stored stream that does not add up: keep serving the rest, retry later
            self.counters["replica_integrity_errors"] += 1
            log.exception("%s: catch-up failed", replica.pair)
        finally:
            channel.catching_up = False
            if ok:
                channel.retry_s = 0.0
            elif self._channels.get(channel.pair) is channel and not replica.live:
                # retried with backoff while anyone wants the pair: /health says stale meanwhile
                channel.retry_s = min(MAX_RETRY_S, max(0.25, channel.retry_s * 2))
                asyncio.get_running_loop().call_later(channel.retry_s, self._retry, channel)

    def _retry(self, channel: PairChannel) -> None:
        if self._channels.get(channel.pair) is channel and not channel.replica.live:
            self.start_catch_up(channel)

    async def catch_up(self, pairs: Collection[str]) -> None:
        """After a (re)subscribe of ``pairs``: Pub/Sub dropped whatever was published meanwhile."""
        for pair in pairs:
            channel = self._channels.get(pair)
            if channel is None:
                continue
            if channel.replica.state is ReplicaState.LIVE:
                channel.replica.mark_behind()
            self.start_catch_up(channel)

    # --- audit: a quiet pair is fine, a replica that missed something is not ---------------

    async def audit(self) -> None:
        """Compare each live replica with md_service's state; catch up one that fell behind
        (the rule: ``gateway.core.audit_rule``)."""
        pairs = [
            pair for pair, channel in self._channels.items()
            if channel.replica.live or channel.replica.state is ReplicaState.NO_DATA
        ]  # fmt: skip
        if not pairs or not self.link.up:
            return
        try:
            positions = await self.link.read_positions(pairs)
        except (RedisError, OSError) as exc:
            self.counters["redis_read_errors"] += 1
            log.warning("audit failed: %s", exc)
            return
        for pair, stored in positions.items():
            channel = self._channels.get(pair)
            if channel is None:
                continue
            mark, channel.audit_mark = channel.audit_mark, stored
            if stored is None:
                continue
            replica, pos = channel.replica, channel.replica.position
            if replica.needs_catch_up or channel.catching_up:
                continue
            if missed_something(replica.state is ReplicaState.NO_DATA, pos, mark, stored):
                self.counters["audit_behind"] += 1
                channel.found_behind(self._clock())
                log.warning("%s: replica at %s is behind md_service's %s/%d; catching up",
                            pair, pos, stored.epoch, stored.seq)  # fmt: skip
                replica.mark_behind()
                self.start_catch_up(channel)

    # --- tasks ---------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
