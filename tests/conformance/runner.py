"""Play a conformance case against the Python ``clients.BookClient`` over real WebSockets.

The runner is the gateway: one WebSocket server on 127.0.0.1 per URL the case gives the
client, playing the case's steps in order (README.md beside this file says what each means).
It waits only on real conditions, each bounded by ``T`` seconds: a connection, the client's
next op, the client having handled a frame (its ``frames`` counter), the client having seen a
close. ``await run_case(read_case(path))`` raises AssertionError at the first step the client
fails, naming the step.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from clients import Backoff, BookClient, ClientOptions
from mdcore.checksum import CHECKSUM_DEPTH, checksum_of_wire_levels
from tests.conformance.kit import COUNTERS, Case, op_matches, substitute_ids

T = 5.0  # seconds: the bound of every wait


class Gateway:
    """One URL of the case: a WebSocket server whose connections the runner plays."""

    def __init__(self) -> None:
        self.server: Server | None = None
        self.accepted: asyncio.Queue[Connection] = asyncio.Queue()

    async def start(self) -> Gateway:
        self.server = await serve(self._handler, "127.0.0.1", 0, compression=None)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/ws"

    async def _handler(self, ws: ServerConnection) -> None:
        conn = Connection(ws)
        self.accepted.put_nowait(conn)
        await conn.run()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class Connection:
    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.ops: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def run(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for data in self.ws:
                self.ops.put_nowait(orjson.loads(data))

    async def next_op(self) -> dict[str, Any]:
        async with asyncio.timeout(T):
            return await self.ops.get()


def case_options() -> ClientOptions:
    """The client as shipped, but reconnecting within tens of milliseconds and without keepalive pings."""
    return ClientOptions(
        backoff=Backoff(initial=0.01, maximum=0.05, factor=2.0, jitter=0.5),
        open_timeout=T,
        close_timeout=1.0,
        ping_interval=None,
    )


def client_counters(client: BookClient) -> dict[str, int]:
    return {name: getattr(client.stats, name) for name in COUNTERS}


def client_book(client: BookClient, pair: str) -> dict[str, Any]:
    """What the client holds for ``pair``, in the case files' terms."""
    view = client.book(pair)
    if not view.synced:
        return {"synced": False, "refused": view.refusal.code if view.refusal is not None else None}
    every = view.top(None)
    bids = [[level.price, level.qty] for level in every.bids]
    asks = [[level.price, level.qty] for level in every.asks]
    return {
        "synced": True, "epoch": view.epoch, "seq": view.seq,
        "checksum": checksum_of_wire_levels(bids, asks),  # of the levels the client holds
        "bids": bids[:CHECKSUM_DEPTH], "asks": asks[:CHECKSUM_DEPTH], "depth": [len(bids), len(asks)],
    }  # fmt: skip


def compare(where: str, want: dict[str, Any], got: dict[str, Any]) -> None:
    for key, value in want.items():
        assert got.get(key) == value, f"{where}: {key} is {got.get(key)!r}, expected {value!r}"


async def run_case(
    case: Case, make_client: Callable[[list[str], list[str]], BookClient] | None = None
) -> None:
    """Play ``case`` against a BookClient (``make_client(urls, pairs)``, default: the shipped client)."""
    header = case.header
    gateways = [await Gateway().start() for _ in range(int(header.get("urls", 1)))]
    urls = [g.url for g in gateways]
    client = (make_client or (lambda u, p: BookClient(u, p, options=case_options())))(
        urls, list(header["pairs"])
    )
    conn: Connection | None = None
    ids: dict[str, Any] = {}
    try:
        await client.start()
        for index, step in enumerate(case.steps, start=2):
            where = (
                f"{case.name} line {index} ({step['kind']}{': ' + step['note'] if 'note' in step else ''})"
            )
            conn = await _play(step, where, client, gateways, conn, ids)
    finally:
        await client.close()
        for gateway in gateways:
            await gateway.stop()


async def _play(
    step: dict[str, Any],
    where: str,
    client: BookClient,
    gateways: list[Gateway],
    conn: Connection | None,
    ids: dict[str, Any],
) -> Connection | None:
    kind = step["kind"]
    if kind == "accept":
        try:
            async with asyncio.timeout(T):
                return await gateways[step["url"]].accepted.get()
        except TimeoutError:
            raise AssertionError(f"{where}: the client did not connect to URL {step['url']}") from None
    assert conn is not None, f"{where}: no connection yet"
    if kind == "client_sends":
        try:
            op = await conn.next_op()
        except TimeoutError:
            raise AssertionError(f"{where}: the client sent nothing, expected {step['op']}") from None
        problem = op_matches(step["op"], op)
        assert problem is None, f"{where}: {problem}"
        if "as" in step:
            ids[step["as"]] = op.get("id")
    elif kind == "server_sends":
        before = client.stats.frames
        await conn.ws.send(substitute_ids(step["frame"], ids))
        await client.wait_for(lambda: client.stats.frames > before, T)
    elif kind == "expect":
        for pair, want in step.get("books", {}).items():
            compare(f"{where}: {pair}", want, client_book(client, pair))
        got = client_counters(client)
        for name, value in step.get("counters", {}).items():
            assert got[name] == value, (
                f"{where}: counter {name} is {got[name]}, expected {value} (all: {got})"
            )
    elif kind in ("server_closes", "server_drops"):
        disconnects = client.stats.disconnects
        if kind == "server_closes":
            await conn.ws.close(step["code"], step["reason"])
        else:
            conn.ws.transport.abort()
        await client.wait_for(lambda: client.stats.disconnects > disconnects, T)
    elif kind == "client_subscribes":
        await client.subscribe(step["pairs"])
    elif kind == "expect_quiet":
        pinging = asyncio.create_task(client.ping(T))
        try:
            op = await conn.next_op()
            assert op.get("op") == "ping", f"{where}: the client sent {op} where nothing was due"
            await conn.ws.send(orjson.dumps({"type": "pong", "id": op.get("id")}).decode())
            await pinging
        finally:
            pinging.cancel()
    else:
        raise AssertionError(f"{where}: unknown step kind {kind!r}")
    return conn
