"""The hub: replicas of wanted pairs, who follows what, snapshots, and the stream's way in.

A pair's Redis subscription and replica exist only while a local client wants the pair,
plus a short linger to avoid churn. Every applied delta goes to the fan-out
(``gateway.fanout``) as the bytes md_service published. Subscribing, with or without
``since`` recovery, lives in ``gateway.subscriptions``; stale clients in ``gateway.slow``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Coroutine
from typing import Any, Protocol

from redis.exceptions import RedisError

from gateway.config import GatewayConfig
from gateway.counters import Counters
from gateway.fanout import FanOut
from gateway.frame_clock import FrameClock
from gateway.gc_policy import GcPolicy
from gateway.overload import Overload
from gateway.replica import PairReplica, ReplicaState
from gateway.session import ClientSession
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
        self, cfg: GatewayConfig, counters: Counters | None = None, store: StoreFactory = open_store
    ) -> None:
        self.cfg = cfg
        self.counters = counters or Counters()
        self.replicas: dict[str, PairReplica] = {}
        self.subscribers: dict[str, set[ClientSession]] = {}
        self.waiting: dict[str, set[ClientSession]] = {}  # owed a snapshot once the replica is live
        self.sessions: set[ClientSession] = set()
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
        self._linger: dict[str, asyncio.TimerHandle] = {}
        self._claims: dict[str, int] = {}  # pairs a subscribe in progress is about to follow
        self._live_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._catching_up: set[str] = set()
        self._catch_up_slots = asyncio.Semaphore(CATCH_UP_CONCURRENCY)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._offered: set[str] = set(cfg.pairs)
        self._offered_at = 0.0
        self._audit_marks: dict[str, StreamPosition] = {}
        self.audit_fixed_at: dict[str, float] = {}

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

    def open_session(self, session: ClientSession) -> None:
        self.sessions.add(session)
        self.counters["connections_opened"] += 1
        if self.gc_policy is not None:
            self.gc_policy.opened()

    def close_session(self, session: ClientSession) -> None:
        self.fanout.leave(session)
        self.sessions.discard(session)
        self.drop_pairs(session, set(session.pairs))
        if self.gc_policy is not None:
            self.gc_policy.closed()

    # --- wanting and dropping pairs --------------------------------------------------------

    async def want_pairs(self, pairs: list[str]) -> None:
        """Make sure each pair has a replica and a confirmed Redis subscription."""
        new: list[str] = []
        for pair in pairs:
            timer = self._linger.pop(pair, None)
            if timer is not None:
                timer.cancel()
            if pair not in self.replicas:
                self.replicas[pair] = PairReplica(pair, self._on_delta, self._on_live, self.cfg.recent_deltas)
                new.append(pair)
        if new:
            await self.link.subscribe(new)  # history is read only after Redis confirmed
            for pair in new:
                replica = self.replicas.get(pair)
                if replica is not None:
                    self.start_catch_up(replica)

    def claim(self, pairs: list[str]) -> None:
        for pair in pairs:
            self._claims[pair] = self._claims.get(pair, 0) + 1

    def unclaim(self, pairs: list[str]) -> None:
        for pair in pairs:
            left = self._claims.get(pair, 0) - 1
            if left > 0:
                self._claims[pair] = left
            else:
                self._claims.pop(pair, None)
                self._maybe_linger(pair)

    def follow(self, session: ClientSession, pair: str) -> None:
        session.pairs.add(pair)
        self.subscribers.setdefault(pair, set()).add(session)

    def drop_pairs(self, session: ClientSession, pairs: set[str] | tuple[str, ...]) -> None:
        for pair in pairs:
            session.pairs.discard(pair)
            session.forget_pair(pair)
            waiting = self.waiting.get(pair)
            if waiting is not None:
                waiting.discard(session)
            subs = self.subscribers.get(pair)
            if subs is not None:
                subs.discard(session)
            self._maybe_linger(pair)

    def _maybe_linger(self, pair: str) -> None:
        if self.subscribers.get(pair) or self._claims.get(pair) or pair in self._linger:
            return
        if pair in self.replicas:
            loop = asyncio.get_running_loop()
            self._linger[pair] = loop.call_later(self.cfg.linger_s, self._drop_pair, pair)

    def _drop_pair(self, pair: str) -> None:
        self._linger.pop(pair, None)
        if self.subscribers.get(pair) or self._claims.get(pair):
            return
        self.subscribers.pop(pair, None)
        self.waiting.pop(pair, None)
        self.replicas.pop(pair, None)
        self._audit_marks.pop(pair, None)
        self.audit_fixed_at.pop(pair, None)
        self.fanout.drop_pending(pair)
        self.link.unsubscribe(pair)

    # --- snapshots owed ------------------------------------------------------------------

    def owe_snapshot(self, session: ClientSession, pair: str) -> None:
        """``session`` gets the pair's snapshot the moment its replica is live."""
        self.waiting.setdefault(pair, set()).add(session)

    def take_owed(self, session: ClientSession, pair: str) -> bool:
        """Whether a snapshot of the pair was owed to ``session``; it is no longer (it went stale:
        its healing owes it instead)."""
        waiting = self.waiting.get(pair)
        if waiting is None or session not in waiting:
            return False
        waiting.discard(session)
        return True

    def recently_fixed(self, pair: str, now: float) -> bool:
        """Whether an audit found the pair's replica behind in the last two audit periods."""
        fixed_at = self.audit_fixed_at.get(pair)
        return fixed_at is not None and now - fixed_at < 2 * self.cfg.audit_s

    # --- snapshots -----------------------------------------------------------------------

    def send_snapshot(self, session: ClientSession, pair: str) -> bool:
        """Send the replica's snapshot now, or owe it (stale client, or replica not live yet)."""
        data = self.snapshot_for(session, pair)
        return data is not None and session.send(data)

    def snapshot_for(self, session: ClientSession, pair: str) -> bytes | None:
        """The snapshot ``session`` should get now (counted as sent), or None if it is owed."""
        if session.lagging:
            session.owe_snapshot(pair)
            return None
        replica = self.replicas.get(pair)
        if replica is None or not replica.live:
            self.owe_snapshot(session, pair)
            return None
        try:
            data = replica.snapshot_bytes()
        except IntegrityError as exc:
            log.error("%s; reloading the replica", exc)
            self.counters["replica_integrity_errors"] += 1
            self.owe_snapshot(session, pair)
            replica.invalidate()
            self.start_catch_up(replica)
            return None
        self.counters["snapshots_sent"] += 1
        self.fanout.floor(session, pair, replica.local.seq)  # type: ignore[union-attr]  # live: has a book
        return data

    async def wait_live(self, replica: PairReplica, timeout: float) -> None:
        """Return once ``replica`` is live, or after ``timeout`` (whichever is first)."""
        if replica.live or timeout <= 0:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._live_waiters.setdefault(replica.pair, [])
        waiters.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            if fut in waiters:
                waiters.remove(fut)

    # --- the stream ----------------------------------------------------------------------

    def on_message(self, pair: str, raw: bytes) -> None:
        replica = self.replicas.get(pair)
        if replica is None:
            return
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
            self.start_catch_up(replica)

    def _on_delta(self, replica: PairReplica, delta: Delta, raw: bytes) -> None:
        self.counters["deltas_in"] += 1
        self.fanout.queue(replica.pair, delta.seq, raw)
        for listener in self.listeners:
            listener.on_delta(replica.pair, delta)

    def _on_batch(self, batch: dict[str, list[tuple[int, bytes]]]) -> None:
        """Remember how far each pair's deltas went out (what a client going stale has seen)."""
        for pair, entries in batch.items():
            replica = self.replicas.get(pair)
            if replica is not None and replica.local is not None and replica.local.epoch is not None:
                replica.note_sent(StreamPosition(replica.local.epoch, entries[-1][0]))

    def _on_live(self, replica: PairReplica, reset: bool) -> None:
        pair = replica.pair
        for fut in self._live_waiters.pop(pair, ()):
            if not fut.done():
                fut.set_result(None)
        if reset and replica.local is not None:
            for listener in self.listeners:
                listener.on_reset(pair, replica.local)
        if reset:
            # Deltas still pending are from before the reload; every subscriber gets the new book.
            self.fanout.drop_pending(pair)
            replica.note_sent(replica.position)
            targets = list(self.subscribers.get(pair, ()))
            self.waiting.pop(pair, None)
        else:
            targets = list(self.waiting.pop(pair, ()))
        for session in targets:
            if session.pairs and pair in session.pairs:
                self.send_snapshot(session, pair)

    def start_catch_up(self, replica: PairReplica) -> None:
        if replica.pair in self._catching_up:
            return
        self._catching_up.add(replica.pair)
        self.spawn(self._catch_up(replica))

    async def _catch_up(self, replica: PairReplica) -> None:
        ok = False
        try:
            async with self._catch_up_slots:
                for _ in range(MAX_CATCH_UP_ROUNDS):
                    if self.replicas.get(replica.pair) is not replica:
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
            self._catching_up.discard(replica.pair)
            if ok:
                replica.retry_s = 0.0
            elif self.replicas.get(replica.pair) is replica and not replica.live:
                # retried with backoff while anyone wants the pair: /health says stale meanwhile
                replica.retry_s = min(MAX_RETRY_S, max(0.25, replica.retry_s * 2))
                asyncio.get_running_loop().call_later(replica.retry_s, self._retry, replica)

    def _retry(self, replica: PairReplica) -> None:
        if self.replicas.get(replica.pair) is replica and not replica.live:
            self.start_catch_up(replica)

    async def catch_up(self, pairs: Collection[str]) -> None:
        """After a (re)subscribe of ``pairs``: Pub/Sub dropped whatever was published meanwhile."""
        for pair in pairs:
            replica = self.replicas.get(pair)
            if replica is None:
                continue
            if replica.state is ReplicaState.LIVE:
                replica.mark_behind()
            self.start_catch_up(replica)

    # --- audit: a quiet pair is fine, a replica that missed something is not ---------------

    async def audit(self) -> None:
        """Compare each live replica with md_service's state; catch up one that fell behind.

        A replica still behind the position Redis had at the *previous* audit has lost a
        message (deltas in flight take milliseconds, audits are seconds apart).
        """
        pairs = [p for p, r in self.replicas.items() if r.live or r.state is ReplicaState.NO_DATA]
        if not pairs or not self.link.up:
            return
        try:
            positions = await self.link.read_positions(pairs)
        except (RedisError, OSError) as exc:
            self.counters["redis_read_errors"] += 1
            log.warning("audit failed: %s", exc)
            return
        for pair, stored in positions.items():
            replica = self.replicas.get(pair)
            if replica is None:
                continue
            mark = self._audit_marks.get(pair)
            if stored is None:
                self._audit_marks.pop(pair, None)
                continue
            self._audit_marks[pair] = stored
            pos = replica.position
            if replica.state is ReplicaState.NO_DATA:
                behind = mark is not None  # a stream exists since the last audit, and no delta came
            else:
                behind = mark is not None and pos is not None and _behind(pos, mark, stored)
            if behind and not replica.needs_catch_up and pair not in self._catching_up:
                self.counters["audit_behind"] += 1
                self.audit_fixed_at[pair] = time.monotonic()
                log.warning("%s: replica at %s is behind md_service's %s/%d; catching up",
                            pair, pos, stored.epoch, stored.seq)  # fmt: skip
                replica.mark_behind()
                self.start_catch_up(replica)

    # --- tasks ---------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _behind(pos: StreamPosition, mark: StreamPosition, stored: StreamPosition) -> bool:
    """Whether a replica at ``pos`` has not reached what Redis held one audit ago (``mark``).

    Another epoch is behind only if Redis has been in that other epoch for two audits.
    """
    if pos.epoch == mark.epoch:
        return pos.seq < mark.seq
    return stored.epoch == mark.epoch
