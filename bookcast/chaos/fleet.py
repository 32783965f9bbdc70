"""The verifying clients: ``clients.BookClient`` instances in the chaos process, every update logged.

Each follows a seeded subset of the pairs on one gateway ("home"); every other client also
knows the other gateway, so some fail over when their gateway dies and some wait for it to
come back. BookClient verifies every seq and checksum and resyncs by itself; the fleet
records every update it applied (:class:`bookcast.chaos.updates.UpdateLog`) for time to
heal, and sums the clients' own counters for the report.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence

from bookcast.chaos.updates import UpdateLog
from clients import BookClient, BookUpdate, ClientOptions


class Fleet:
    def __init__(self, urls: Sequence[str], pairs: Sequence[str], count: int, rng: random.Random) -> None:
        self.updates = UpdateLog()
        self.clients: list[BookClient] = []
        self.subscriptions: dict[int, tuple[str, ...]] = {}
        self.homes: dict[int, int] = {}  # client -> index of its first gateway
        options = ClientOptions(fail_fast=False)
        for i in range(count):
            home = i % len(urls)
            followed = tuple(
                sorted(rng.sample(list(pairs), rng.randint(min(2, len(pairs)), min(5, len(pairs)))))
            )
            url: str | list[str] = urls[home]
            if i % 4 in (1, 2) and len(urls) > 1:  # half of them fail over to the next gateway
                url = [urls[home], *(u for u in urls if u != urls[home])]
            self.clients.append(BookClient(url, followed, options=options, on_update=self._recorder(i)))
            self.subscriptions[i] = followed
            self.homes[i] = home

    def _recorder(self, client: int) -> Callable[[BookUpdate], None]:
        updates = self.updates

        def record(update: BookUpdate) -> None:
            updates.add(client, update.pair, update.epoch, update.seq, time.monotonic())

        return record

    async def start(self, timeout: float) -> None:
        for client in self.clients:
            await client.start()
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(client.wait_synced() for client in self.clients))

    def all_synced(self) -> bool:
        return all(client.book(pair).synced for client in self.clients for pair in client.pairs)

    def unsynced(self) -> list[str]:
        return [
            f"client {i} {p}" for i, c in enumerate(self.clients) for p in c.pairs if not c.book(p).synced
        ]

    def total(self, name: str) -> int:
        """One of BookClient's counters (``clients.ClientStats``), summed over the fleet."""
        return sum(int(getattr(client.stats, name)) for client in self.clients)

    async def close(self) -> None:
        await asyncio.gather(*(client.close() for client in self.clients), return_exceptions=True)
