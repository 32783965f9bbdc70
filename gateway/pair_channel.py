"""Everything the gateway holds for one wanted pair, in one object with one owner: the hub.

A pair is *wanted* while a client follows it or a subscribe in progress (or a dialect)
claims it; after the last one goes it lingers briefly (re-subscribing clients do not churn
the Redis subscription), then the hub drops the channel and every piece of the pair's state
with it. Only :class:`gateway.hub.Hub` changes a channel, through these methods; the rest of
the gateway reads it (health, metrics, recovery).

The pair's pending deltas are not here: the fan-out owns them (``gateway.fanout``), because
its flush takes the whole window's batch of every pair in one swap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.core.replica import PairReplica
from mdcore.messages import StreamPosition

if TYPE_CHECKING:
    from gateway.session import Subscriber


class PairChannel:
    """One pair's replica, followers, owed snapshots, claims, linger timer and audit marks."""

    __slots__ = (
        "_claims",
        "_fixed_at",
        "_linger",
        "_live_waiters",
        "_owed",
        "audit_mark",
        "catching_up",
        "pair",
        "replica",
        "retry_s",
        "streaming",
        "subscribers",
    )

    def __init__(self, replica: PairReplica) -> None:
        self.pair = replica.pair
        self.replica = replica
        self.subscribers: set[Subscriber] = set()
        self._owed: set[Subscriber] = set()  # owed a snapshot the moment the replica is live
        self._claims = 0  # subscribes in progress (and dialects) that want the pair
        self._linger: asyncio.TimerHandle | None = None
        self._live_waiters: list[asyncio.Future[None]] = []
        self.streaming = False  # the hub asked the store to subscribe to the pair's channel
        self.catching_up = False  # a catch-up task runs for the replica
        self.retry_s = 0.0  # backoff of the next catch-up after a failed one
        self.audit_mark: StreamPosition | None = None  # md_service's position at the last audit
        self._fixed_at: float | None = None  # when an audit last found the replica behind

    @property
    def wanted(self) -> bool:
        return bool(self.subscribers) or self._claims > 0

    # --- followers and claims ----------------------------------------------------------------

    def follow(self, session: Subscriber) -> None:
        self.subscribers.add(session)

    def unfollow(self, session: Subscriber) -> None:
        """``session`` no longer follows the pair: nor is it owed its snapshot."""
        self.subscribers.discard(session)
        self._owed.discard(session)

    def claim(self) -> None:
        self._claims += 1

    def unclaim(self) -> None:
        self._claims = max(0, self._claims - 1)

    # --- snapshots owed ------------------------------------------------------------------------

    def owe(self, session: Subscriber) -> None:
        self._owed.add(session)

    def take_owed(self, session: Subscriber) -> bool:
        """Whether ``session`` was owed the snapshot; it no longer is."""
        if session not in self._owed:
            return False
        self._owed.discard(session)
        return True

    def take_all_owed(self) -> list[Subscriber]:
        owed, self._owed = list(self._owed), set()
        return owed

    # --- linger --------------------------------------------------------------------------------

    def linger(self, delay_s: float, drop: Callable[[str], None]) -> None:
        """Call ``drop(pair)`` after ``delay_s`` unless wanted again meanwhile (:meth:`stop_linger`)."""
        if self._linger is None:
            self._linger = asyncio.get_running_loop().call_later(delay_s, drop, self.pair)

    def stop_linger(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    # --- waiting for the replica -----------------------------------------------------------------

    async def wait_live(self, timeout: float) -> None:
        """Return once the replica is live, or after ``timeout`` (whichever is first)."""
        if self.replica.live or timeout <= 0:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._live_waiters.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            if fut in self._live_waiters:
                self._live_waiters.remove(fut)

    def wake_live_waiters(self) -> None:
        waiters, self._live_waiters = self._live_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    # --- audit ---------------------------------------------------------------------------------

    def found_behind(self, now: float) -> None:
        self._fixed_at = now

    def recently_fixed(self, now: float, audit_s: float) -> bool:
        """Whether an audit found the replica behind in the last two audit periods."""
        return self._fixed_at is not None and now - self._fixed_at < 2 * audit_s
