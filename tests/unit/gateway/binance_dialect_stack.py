"""The Binance dialect on a real websockets server, fed by a fake hub (shared by its tests).

The fake hub plays the gateway's part of the contract (``HubPort`` plus the ``on_delta`` /
``on_reset`` calls): a source book per pair makes verified deltas, a replica applies them
and hands them to the dialect, and the test can make the replica miss deltas and reload
(an unrecoverable gap) or start a new epoch.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from websockets.asyncio.server import serve

from gateway.binance.config import BinanceConfig
from gateway.binance.dialect import BinanceDialect, BookUnavailableError
from mdcore.book import ASK, BID, OrderBook
from mdcore.instruments import instrument
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, Snapshot
from mdcore.wire_format import book_checksum
from tests.binance_client.binance_reference_client import http_get_json

T = 5.0
PAIRS = ("BTC-USD", "ETH-USD", "SOL-USD")
EPOCH = "1732190400000-aaaaaa"


class Source:
    """md_service's side of one pair: a book, an epoch, a seq, and verified deltas."""

    def __init__(self, pair: str, epoch: str, seed: int) -> None:
        self.pair, self.epoch, self.seq = pair, epoch, 0
        self.inst = instrument(pair)
        self.book = OrderBook()
        self.rng = random.Random(seed)

    def step(self) -> Delta:
        fp, fq = self.inst.format_price, self.inst.format_qty
        changes: tuple[list[tuple[str, str]], list[tuple[str, str]]] = ([], [])
        for side, index, base in ((BID, 0, 100_000), (ASK, 1, 100_050)):
            for price in {base + self.rng.randint(0, 40) for _ in range(self.rng.randint(1, 4))}:
                qty = 0 if self.rng.random() < 0.25 else self.rng.randint(1, 10**6)
                self.book.set_level(side, price, qty)
                changes[index].append((fp(price), fq(qty)))
        self.seq += 1
        ts = 1_732_190_400_000_000_000 + self.seq * 100_000_000
        return Delta(self.pair, self.epoch, self.seq, ts, ts, changes[0], changes[1], self.checksum())

    def checksum(self) -> int:
        return book_checksum(self.book, self.inst)

    def local(self) -> LocalBook:
        fp, fq = self.inst.format_price, self.inst.format_qty
        local = LocalBook(self.pair)
        bids = [(fp(p), fq(q)) for p, q in self.book.iter_side(BID)]
        asks = [(fp(p), fq(q)) for p, q in self.book.iter_side(ASK)]
        local.load_snapshot(Snapshot(self.pair, self.epoch, self.seq, 0, bids, asks, self.checksum()))
        return local


class FakeHub:
    def __init__(self) -> None:
        self.sources = {pair: Source(pair, EPOCH, seed) for seed, pair in enumerate(PAIRS)}
        self.replicas: dict[str, LocalBook] = {}
        self.wanted: Counter[str] = Counter()
        self.redis_down = False
        self.dialect: BinanceDialect | None = None

    async def offered_pairs(self) -> set[str]:
        return set(PAIRS)

    async def want(self, pair: str) -> None:
        self.wanted[pair] += 1
        self.replicas.setdefault(pair, self.sources[pair].local())

    def unwant(self, pair: str) -> None:
        self.wanted[pair] -= 1

    def live_book(self, pair: str) -> LocalBook | None:
        return self.replicas.get(pair)

    async def load_book(self, pair: str) -> LocalBook | None:
        if self.redis_down:
            raise BookUnavailableError("redis is down")
        return self.sources[pair].local()

    def publish(self, pair: str, deliver: bool = True) -> None:
        """One window of ``pair``; with ``deliver=False`` the replica never gets it (Pub/Sub lost it)."""
        delta = self.sources[pair].step()
        replica = self.replicas.get(pair)
        if deliver and replica is not None:
            replica.apply_delta(delta)
            assert self.dialect is not None
            self.dialect.on_delta(pair, delta)

    def reload(self, pair: str) -> None:
        """History did not reach: the replica loads the whole book and tells the dialect."""
        self.replicas[pair] = self.sources[pair].local()
        assert self.dialect is not None
        self.dialect.on_reset(pair, self.replicas[pair])


class Stack:
    def __init__(self, cfg: BinanceConfig | None = None) -> None:
        self.hub = FakeHub()
        self.now_ms = 1_732_190_400_000
        self.mono = 1000.0  # the dialect's monotonic clock, moved by the test
        self.dialect = BinanceDialect(self.hub, cfg, wall_ms=lambda: self.now_ms, monotonic=lambda: self.mono)
        self.hub.dialect = self.dialect

    async def __aenter__(self) -> Stack:
        self._server = await serve(
            self.dialect.serve,
            "127.0.0.1",
            0,
            process_request=self.dialect.process_request,
            max_size=4096,  # the gateway's limit for native frames; the dialect raises its own
            ping_interval=None,  # the dialect sets Binance's keepalive per connection
        ).__aenter__()
        port = self._server.sockets[0].getsockname()[1]
        self.ws_base = f"ws://127.0.0.1:{port}/binance"
        self.rest_base = f"http://127.0.0.1:{port}/binance"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def rest(self, target: str) -> tuple[int, dict[str, str], object]:
        return await asyncio.to_thread(http_get_json, f"{self.rest_base}{target}")

    def update_id(self, pair: str) -> int:
        local = self.hub.replicas[pair]
        return self.dialect.ids(pair).update_id(local.epoch, local.seq)


async def until(predicate, timeout: float = T) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)  # polling a plain attribute; there is no event to await
