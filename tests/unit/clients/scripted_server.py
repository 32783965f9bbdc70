"""A scripted gateway for client tests: a real WebSocket server on 127.0.0.1, port 0.

The test drives it inline: ``conn = await server.accept()``, ``await conn.expect("subscribe")``,
``await conn.send(source.snapshot())``. Books come from :class:`SourceBook`, which uses
mdcore, so every snapshot and delta carries a correct checksum unless a test breaks it
on purpose. ``server.refuse(503, retry_after="1")`` answers the next handshake with that
status instead of upgrading it, as an overloaded gateway does. Every wait is bounded by
``T`` seconds; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from clients import Backoff, BookClient, ClientOptions
from mdcore.book import ASK, BID, OrderBook
from mdcore.codec import encode_ack, encode_delta, encode_pong, encode_snapshot, pack_frame
from mdcore.instruments import instrument
from mdcore.messages import Ack, Delta, Pong, Snapshot
from mdcore.wire_format import book_checksum

T = 5.0  # the one time unit: every wait in these tests is bounded by it

Levels = Iterable[tuple[str, str]]


def fast_options(**overrides: Any) -> ClientOptions:
    """Client options for tests: reconnects within tens of milliseconds, no keepalive noise."""
    settings: dict[str, Any] = {
        "backoff": Backoff(initial=0.01, maximum=0.05, factor=2.0, jitter=0.5),
        "open_timeout": T,
        "close_timeout": 1.0,
        "ping_interval": None,
    }
    settings.update(overrides)
    return ClientOptions(**settings)


class SourceBook:
    """The source of truth for one pair: an mdcore book with a stream position."""

    _clock = itertools.count(1)

    def __init__(
        self, pair: str = "BTC-USD", epoch: str = "e1", seq: int = 100, bids: Levels = (), asks: Levels = ()
    ) -> None:
        self.pair = pair
        self.inst = instrument(pair)
        self.book = OrderBook()
        self.epoch = epoch
        self.seq = seq
        self.history: dict[int, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {}
        for price, qty in bids:
            self.book.set_level(BID, self.inst.parse_price(price), self.inst.parse_qty(qty))
        for price, qty in asks:
            self.book.set_level(ASK, self.inst.parse_price(price), self.inst.parse_qty(qty))
        self.history[seq] = self.levels()

    @classmethod
    def with_depth(cls, pair: str = "BTC-USD", levels: int = 10, **kwargs: Any) -> SourceBook:
        """A book with ``levels`` levels a side around 100 (prices on the pair's grid)."""
        inst = instrument(pair)
        step = 10 ** max(inst.price_decimals - 1, 0)
        mid = 100 * 10**inst.price_decimals
        qty = inst.format_qty(3 * 10**inst.qty_decimals)
        bids = [(inst.format_price(mid - step * (i + 1)), qty) for i in range(levels)]
        asks = [(inst.format_price(mid + step * (i + 1)), qty) for i in range(levels)]
        return cls(pair, bids=bids, asks=asks, **kwargs)

    def _ts(self) -> int:
        return time.time_ns() + next(self._clock)

    def levels(self, depth: int | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Best-first ``(price, qty)`` strings of both sides."""
        fp, fq = self.inst.format_price, self.inst.format_qty
        return (
            [(fp(p), fq(q)) for p, q in self.book.top(BID, depth)],
            [(fp(p), fq(q)) for p, q in self.book.top(ASK, depth)],
        )

    def snapshot(self) -> Snapshot:
        bids, asks = self.levels()
        return Snapshot(
            self.pair, self.epoch, self.seq, self._ts(),
            [list(level) for level in bids], [list(level) for level in asks],
            book_checksum(self.book, self.inst),
        )  # fmt: skip

    def delta(self, bids: Levels = (), asks: Levels = ()) -> Delta:
        """Apply absolute changes ("0" deletes), advance seq, and return the delta saying so."""
        bids, asks = [list(level) for level in bids], [list(level) for level in asks]
        for side, changes in ((BID, bids), (ASK, asks)):
            for price, qty in changes:
                self.book.set_level(side, self.inst.parse_price(price), self.inst.parse_qty(qty))
        self.seq += 1
        self.history[self.seq] = self.levels()
        ts = self._ts()
        return Delta(
            self.pair, self.epoch, self.seq, ts, ts - 1_000_000, bids, asks,
            book_checksum(self.book, self.inst),
        )  # fmt: skip

    def bump(self, n: int = 1) -> Delta:
        """A delta that changes the best bid's quantity (a real change, every time)."""
        best = self.book.best_bid()
        assert best is not None, "bump needs a bid"
        qty = self.inst.format_qty(best[1] + n * self.inst.lot)
        return self.delta(bids=[(self.inst.format_price(best[0]), qty)])

    def new_epoch(self, epoch: str, seq: int = 0) -> None:
        """Restart the stream (md_service restarted): same book, new epoch, new seq."""
        self.epoch, self.seq = epoch, seq
        self.history[seq] = self.levels()


def encode(message: Any) -> bytes:
    if isinstance(message, Snapshot):
        return encode_snapshot(message)
    if isinstance(message, Delta):
        return encode_delta(message)
    if isinstance(message, Ack):
        return encode_ack(message)
    if isinstance(message, Pong):
        return encode_pong(message)
    if isinstance(message, bytes):
        return message
    if isinstance(message, str):
        return message.encode()
    return orjson.dumps(message)


class ScriptedConnection:
    """The server side of one client connection, as the test sees it."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []  # every op, in order
        self.arrivals: list[float] = []  # loop.time() at which each op of ``received`` arrived
        self.auto_pong = False
        self.closed = asyncio.Event()
        self._ops: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def next_op(self, timeout: float = T) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            return await self._ops.get()

    async def expect(self, op: str, timeout: float = T) -> dict[str, Any]:
        """The next op the client sent, which must be ``op``."""
        message = await self.next_op(timeout)
        assert message.get("op") == op, f"expected {op!r}, client sent {message}"
        return message

    def pending_ops(self) -> list[dict[str, Any]]:
        """Ops received but not yet taken with next_op/expect."""
        return list(self._ops._queue)  # type: ignore[attr-defined]

    async def send(self, *messages: Any) -> None:
        """One frame: a single message object, or an array frame if several are given."""
        await self.ws.send(pack_frame([encode(m) for m in messages]).decode())

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def subscribed(self, op: dict[str, Any], recovered: bool | None = None) -> None:
        await self.send(Ack("subscribed", tuple(op["pairs"]), op.get("id"), recovered))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)

    def drop(self) -> None:
        """Cut the TCP connection with no closing handshake (a crash or a network failure)."""
        self.ws.transport.abort()

    async def run(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            async for data in self.ws:
                op = orjson.loads(data)
                self.received.append(op)
                self.arrivals.append(loop.time())
                if self.auto_pong and op.get("op") == "ping":
                    await self.ws.send(encode_pong(Pong(op.get("id"))).decode())
                self._ops.put_nowait(op)
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()


@dataclass(frozen=True, slots=True)
class Handshake:
    """One handshake the server saw: when (loop time) and the HTTP status it answered."""

    at: float
    status: int


class ScriptedServer:
    """A WebSocket server whose every connection the test scripts; ``async with`` it."""

    def __init__(self) -> None:
        self._server: Server | None = None
        self._accepted: asyncio.Queue[ScriptedConnection] = asyncio.Queue()
        self._refusals: deque[tuple[int, str | None]] = deque()
        self.connections: list[ScriptedConnection] = []
        self.handshakes: list[Handshake] = []  # every one, refused or upgraded (101)
        self.handshake_seen = asyncio.Event()  # set at each handshake; the test clears it

    def refuse(self, status: int, retry_after: str | None = None, times: int = 1) -> None:
        """Answer the next ``times`` handshakes with ``status`` (and ``Retry-After``) instead of 101."""
        self._refusals.extend([(status, retry_after)] * times)

    async def wait_handshakes(self, count: int, timeout: float = T) -> list[Handshake]:
        """The first ``count`` handshakes, once that many have happened."""
        async with asyncio.timeout(timeout):
            while len(self.handshakes) < count:
                self.handshake_seen.clear()
                await self.handshake_seen.wait()
        return self.handshakes[:count]

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        at = asyncio.get_running_loop().time()
        self.handshake_seen.set()
        if not self._refusals:
            self.handshakes.append(Handshake(at, 101))
            return None
        status, retry_after = self._refusals.popleft()
        self.handshakes.append(Handshake(at, status))
        response = connection.respond(status, "refused by the test\n")
        if retry_after is not None:
            response.headers["Retry-After"] = retry_after
        return response

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def _handler(self, ws: ServerConnection) -> None:
        conn = ScriptedConnection(ws)
        self.connections.append(conn)
        self._accepted.put_nowait(conn)
        await conn.run()

    async def accept(self, timeout: float = T) -> ScriptedConnection:
        """The next connection a client opens."""
        async with asyncio.timeout(timeout):
            return await self._accepted.get()

    async def __aenter__(self) -> ScriptedServer:
        self._server = await serve(
            self._handler, "127.0.0.1", 0, compression=None, process_request=self._process_request
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def open_synced(
    server: ScriptedServer, sources: list[SourceBook], **client_kwargs: Any
) -> tuple[BookClient, ScriptedConnection]:
    """A started client following ``sources``' pairs, each synced from a snapshot."""
    client_kwargs.setdefault("options", fast_options())
    client = BookClient(server.url, [s.pair for s in sources], **client_kwargs)
    await client.start()
    conn = await server.accept()
    op = await conn.expect("subscribe")
    assert op["pairs"] == [s.pair for s in sources]
    await conn.subscribed(op)
    await conn.send(*(s.snapshot() for s in sources))
    await client.wait_synced(timeout=T)
    return client, conn


def book_levels(client: BookClient, pair: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The client's whole book for ``pair`` as plain tuples, comparable with SourceBook.levels()."""
    top = client.book(pair).top(None)
    return [tuple(level) for level in top.bids], [tuple(level) for level in top.asks]
