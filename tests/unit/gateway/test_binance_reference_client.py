"""The Binance reference client against a tiny scripted Binance-like server (no bookcast code in it).

The server keeps, per symbol, a book of 8-decimal strings and an update id; the test moves
it one event at a time and may withhold events to force a gap. REST depth is answered from
``process_request``; streams on ``/ws/<names>``, ``/ws`` + SUBSCRIBE and ``/stream?streams=``.
"""

from __future__ import annotations

import asyncio
import http
import random
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.binance_client.binance_reference_client import DepthBook, ReferenceDepthClient

T = 5.0  # every wait is bounded by this


class ScriptedBinance:
    def __init__(self, symbols: list[str], seed: int = 7, stale_snapshots: int = 0) -> None:
        self.rng = random.Random(seed)
        self.ids = {s: 1_000 for s in symbols}
        self.books: dict[str, tuple[dict[str, str], dict[str, str]]] = {s: ({}, {}) for s in symbols}
        self.history: dict[tuple[str, int], tuple[dict[str, str], dict[str, str]]] = {}
        self.subs: dict[ServerConnection, tuple[bool, set[str]]] = {}
        self.depth_requests = 0
        self.stale_snapshots = stale_snapshots
        self.changed = asyncio.Condition()
        for symbol in symbols:
            self.history[(symbol, self.ids[symbol])] = ({}, {})

    async def __aenter__(self) -> ScriptedBinance:
        self.server = await serve(self.handler, "127.0.0.1", 0, process_request=self.rest).__aenter__()
        port = self.server.sockets[0].getsockname()[1]
        self.rest_base = f"http://127.0.0.1:{port}"
        self.ws_base = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    # --- the market ----------------------------------------------------------------------

    def step(self, symbol: str, send: bool = True, span: int = 1) -> None:
        """Change a few levels; the event covers update ids id+1 .. id+span."""
        bids, asks = self.books[symbol]
        changes: tuple[list[list[str]], list[list[str]]] = ([], [])
        for side, levels, base in ((0, bids, 100), (1, asks, 110)):
            for _ in range(self.rng.randint(1, 3)):
                price = f"{base + self.rng.randint(0, 8)}.{self.rng.randint(0, 99):02d}000000"
                qty = "0.00000000" if self.rng.random() < 0.3 else f"{self.rng.randint(1, 9)}.50000000"
                if qty == "0.00000000":
                    levels.pop(price, None)
                else:
                    levels[price] = qty
                changes[side].append([price, qty])
        first = self.ids[symbol] + 1
        self.ids[symbol] += span
        self.history[(symbol, self.ids[symbol])] = (dict(bids), dict(asks))
        if not send:
            return
        event = orjson.dumps(
            {"e": "depthUpdate", "E": 1, "s": symbol, "U": first, "u": self.ids[symbol],
             "b": changes[0], "a": changes[1]}
        )  # fmt: skip
        name = f"{symbol.lower()}@depth@100ms"
        for ws, (combined, names) in list(self.subs.items()):
            if name in names:
                data = orjson.dumps({"stream": name, "data": orjson.loads(event)}) if combined else event
                broadcast((ws,), data, text=True)

    def levels(self, symbol: str, update_id: int | None = None) -> tuple[list[list[str]], list[list[str]]]:
        key = update_id if update_id is not None else self.ids[symbol]
        bids, asks = self.history[(symbol, key)]
        return (
            [[p, bids[p]] for p in sorted(bids, key=float, reverse=True)],
            [[p, asks[p]] for p in sorted(asks, key=float)],
        )

    # --- REST and streams ----------------------------------------------------------------

    def rest(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path != "/api/v3/depth":
            return None
        self.depth_requests += 1
        symbol = parse_qs(url.query)["symbol"][0]
        update_id = self.ids[symbol]
        if self.stale_snapshots:
            self.stale_snapshots -= 1
            update_id = min(k for s, k in self.history if s == symbol)  # older than any event sent
        bids, asks = self.levels(symbol, update_id)
        body = orjson.dumps({"lastUpdateId": update_id, "bids": bids, "asks": asks})
        headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return Response(200, http.HTTPStatus.OK.phrase, headers, body)

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        if url.path.startswith("/stream"):
            combined, names = True, set(parse_qs(url.query).get("streams", [""])[0].split("/")) - {""}
        else:
            combined, names = False, set(url.path.removeprefix("/ws").split("/")) - {""}
        self.subs[ws] = (combined, names)
        await self._notify()
        try:
            async for frame in ws:
                request = orjson.loads(frame)
                if request["method"] == "SUBSCRIBE":
                    names.update(request["params"])
                await ws.send(orjson.dumps({"result": None, "id": request["id"]}).decode())
                await self._notify()
        except ConnectionClosed:
            pass
        finally:
            del self.subs[ws]

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_streams(self, count: int) -> None:
        def ready() -> bool:
            return sum(len(names) for _, names in self.subs.values()) >= count

        async with asyncio.timeout(T), self.changed:
            await self.changed.wait_for(ready)


async def _converge(server: ScriptedBinance, client: ReferenceDepthClient, symbol: str) -> None:
    """Keep the market moving until the client's book is the server's at the same update id."""
    book = client.books[symbol]
    for _ in range(100):
        server.step(symbol, span=server.rng.randint(1, 3))
        try:
            await client.wait_for(lambda: book.last_update_id == server.ids[symbol], 0.2)
            break
        except TimeoutError:
            continue
    assert book.last_update_id == server.ids[symbol]
    assert (book.sorted_bids(), book.sorted_asks()) == server.levels(symbol)


@pytest.mark.parametrize("mode", ["raw", "subscribe", "combined"])
async def test_client_keeps_every_book_equal_to_the_server(mode) -> None:
    symbols = ["BTCUSDT", "ETHUSDT"]
    async with (
        ScriptedBinance(symbols) as server,
        ReferenceDepthClient(server.ws_base, server.rest_base, symbols, mode=mode) as client,
    ):
        await server.wait_streams(2)
        for symbol in symbols:
            await _converge(server, client, symbol)
            assert client.books[symbol].resyncs == 0
        if mode == "subscribe":
            assert client.replies == [{"result": None, "id": 1}]


async def test_a_gap_in_update_ids_makes_the_client_refetch_the_snapshot() -> None:
    async with (
        ScriptedBinance(["BTCUSDT"]) as server,
        ReferenceDepthClient(server.ws_base, server.rest_base, ["BTCUSDT"]) as client,
    ):
        await server.wait_streams(1)
        await _converge(server, client, "BTCUSDT")
        requests = server.depth_requests
        for _ in range(3):
            server.step("BTCUSDT", send=False)  # withheld: the next event's U jumps
        await _converge(server, client, "BTCUSDT")
        assert client.books["BTCUSDT"].resyncs == 1
        assert server.depth_requests > requests


async def test_a_snapshot_older_than_the_first_event_is_fetched_again() -> None:
    async with (
        ScriptedBinance(["BTCUSDT"], stale_snapshots=2) as server,
        ReferenceDepthClient(server.ws_base, server.rest_base, ["BTCUSDT"]) as client,
    ):
        await server.wait_streams(1)
        await _converge(server, client, "BTCUSDT")
        assert server.depth_requests >= 3
        assert client.books["BTCUSDT"].snapshots == 1


# --- the procedure itself, without I/O ------------------------------------------------------


def _event(first: int, final: int, bids=(), asks=()) -> dict:
    return {"e": "depthUpdate", "s": "X", "U": first, "u": final, "b": list(bids), "a": list(asks)}


def test_procedure_drops_old_events_and_needs_the_first_to_straddle_the_snapshot() -> None:
    book = DepthBook("X")
    book.on_event(_event(8, 9, bids=[["1.0", "5"]]))
    book.on_event(_event(10, 12, bids=[["1.0", "6"]], asks=[["2.0", "1"]]))
    book.on_event(_event(13, 13, asks=[["2.0", "0"]]))
    assert book.wants_snapshot() and book.first_buffered_u == 8
    assert book.on_snapshot({"lastUpdateId": 10, "bids": [["1.0", "5"]], "asks": []})
    # 8..9 dropped (u <= 10); 10..12 straddles 11 and is applied; 13 follows 12.
    assert book.last_update_id == 13
    assert book.bids == {"1.0": "6"} and book.asks == {}
    assert (book.dropped, book.applied, book.resyncs) == (1, 2, 0)


def test_procedure_restarts_on_a_jump_and_on_a_first_event_that_does_not_straddle() -> None:
    book = DepthBook("X")
    book.on_event(_event(5, 5))
    assert book.on_snapshot({"lastUpdateId": 5, "bids": [], "asks": []})
    book.on_event(_event(6, 6, bids=[["1.0", "1"]]))
    book.on_event(_event(8, 8))  # 7 is missing
    assert not book.synced and book.resyncs == 1 and book.buffer[0]["U"] == 8
    assert not book.on_snapshot({"lastUpdateId": 7, "bids": [], "asks": []})  # older than U=8: refetch
    assert book.on_snapshot({"lastUpdateId": 12, "bids": [], "asks": []})
    book.on_event(_event(14, 15))  # does not straddle 13
    assert not book.synced and book.resyncs == 2
