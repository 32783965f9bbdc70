"""The hub as a protocol dialect sees it (``gateway.binance.dialect.HubPort``).

A dialect (today: Binance's market-data API) serves the same replicas as the native
protocol. It asks for a pair through :meth:`want` (a claim, so the replica lives while it is
wanted) and is told about every applied delta and every book reset of the pairs it wants.
Deltas are decoded here, once, and only for pairs a dialect wants.
"""

from __future__ import annotations

from collections import Counter

from redis.exceptions import RedisError

from gateway.binance.dialect import BinanceDialect, BookUnavailableError
from gateway.hub import Hub
from mdcore.errors import IntegrityError
from mdcore.local_book import LocalBook
from mdcore.messages import Delta


class HubDialectPort:
    """Adapter from :class:`Hub` to one dialect; registered with the hub as a stream listener."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.dialect: BinanceDialect | None = None
        self._wanted: Counter[str] = Counter()
        hub.listeners.append(self)

    async def offered_pairs(self) -> set[str]:
        return await self.hub.offered_pairs()

    async def want(self, pair: str) -> None:
        self._wanted[pair] += 1
        self.hub.claim([pair])
        await self.hub.want_pairs([pair])

    def unwant(self, pair: str) -> None:
        if self._wanted[pair] <= 0:
            return
        self._wanted[pair] -= 1
        if not self._wanted[pair]:
            del self._wanted[pair]
        self.hub.unclaim([pair])

    def live_book(self, pair: str) -> LocalBook | None:
        """The replica's book, checksum-verified at its current seq (None: not live, or wrong)."""
        replica = self.hub.replica(pair)
        return replica.verified_book() if replica is not None else None

    async def load_book(self, pair: str) -> LocalBook | None:
        try:
            return await self.hub.link.load_book(pair)
        except (RedisError, OSError, IntegrityError) as exc:
            raise BookUnavailableError(str(exc)) from exc

    # --- hub listener ----------------------------------------------------------------------

    def on_delta(self, pair: str, delta: Delta) -> None:
        if self.dialect is not None and pair in self._wanted:
            self.dialect.on_delta(pair, delta)

    def on_reset(self, pair: str, local: LocalBook) -> None:
        if self.dialect is not None and pair in self._wanted:
            self.dialect.on_reset(pair, local)
