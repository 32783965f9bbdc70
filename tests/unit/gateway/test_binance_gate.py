"""The gate in front of the Binance dialect: admission for upgrades, the token for REST.

A real websockets server runs the gate and the dialect over a hub with one empty book; the
gateway's admission is stood in for by a recorder that admits only requests carrying the
token (the real one, on the real gateway, is exercised in tests/integration).
"""

from __future__ import annotations

import asyncio
import http.client

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request, Response

from gateway.binance.dialect import BinanceDialect
from gateway.binance.gate import BinanceGate
from gateway.core.limits import request_token, token_ok
from mdcore.local_book import LocalBook

TOKEN = "s3cret"


class OneEmptyBook:
    async def offered_pairs(self) -> set[str]:
        return {"BTC-USD"}

    async def want(self, pair: str) -> None:
        pass

    def unwant(self, pair: str) -> None:
        pass

    def live_book(self, pair: str) -> LocalBook | None:
        return None

    async def load_book(self, pair: str) -> LocalBook | None:
        return None


class Admission:
    """Stands in for ``HttpApi.admit``: records what it saw, admits the token only."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def __call__(self, conn: object, request: Request, query: str) -> Response | None:
        self.seen.append((request.path, request.headers.get("Authorization")))
        if token_ok(request_token(query, request.headers.get("Authorization")), {TOKEN}):
            return None
        return Response(401, "Unauthorized", Headers([("Content-Length", "0")]), b"")


@pytest.fixture
async def gate():
    dialect = BinanceDialect(OneEmptyBook())
    admission = Admission()
    gate = BinanceGate(dialect, admission, frozenset({TOKEN}))
    async with serve(dialect.serve, "127.0.0.1", 0, process_request=gate.process_request) as server:
        port = server.sockets[0].getsockname()[1]
        yield gate, admission, port


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, orjson.loads(response.read())
    finally:
        conn.close()


async def rest(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, object]:
    return await asyncio.to_thread(_get, port, path, headers)


async def test_rest_needs_the_token_in_any_of_three_places_and_never_sees_it(gate) -> None:
    gate, admission, port = gate
    depth = "/binance/api/v3/depth?symbol=BTCUSD"
    unauthorized = (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
    assert await rest(port, depth) == unauthorized
    assert await rest(port, f"{depth}&token=wrong") == unauthorized
    assert await rest(port, depth, {"X-MBX-APIKEY": "wrong"}) == unauthorized
    empty = (200, {"lastUpdateId": 0, "bids": [], "asks": []})
    assert await rest(port, f"{depth}&token={TOKEN}") == empty  # not -1104: the dialect never sees it
    assert await rest(port, f"/binance/api/v3/depth?token={TOKEN}&symbol=BTCUSD&limit=5") == empty
    assert await rest(port, depth, {"Authorization": f"Bearer {TOKEN}"}) == empty
    assert await rest(port, depth, {"X-MBX-APIKEY": TOKEN}) == empty
    assert (await rest(port, f"/binance/api/v3/ping?token={TOKEN}"))[0] == 200
    assert gate.dialect.counters["refused_unauthorized"] == 3 and admission.seen == []


async def test_upgrades_go_through_the_gateway_admission(gate) -> None:
    gate, admission, port = gate
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"ws://127.0.0.1:{port}/binance/ws/btcusd@depth")
    assert refused.value.response.status_code == 401
    async with connect(f"ws://127.0.0.1:{port}/binance/ws/btcusd@depth?token={TOKEN}") as ws:
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
        assert orjson.loads(await ws.recv()) == {"result": ["btcusd@depth"], "id": 1}
    async with connect(f"ws://127.0.0.1:{port}/binance/ws/0", additional_headers={"X-MBX-APIKEY": TOKEN}):
        pass
    assert admission.seen == [
        ("/binance/ws/btcusd@depth", None),
        (f"/binance/ws/btcusd@depth?token={TOKEN}", None),
        ("/binance/ws/0", f"Bearer {TOKEN}"),  # the API-key header counts as a bearer token
    ]


@pytest.mark.parametrize("header", ["Authorization", "X-MBX-APIKEY", "Origin"])
async def test_a_repeated_gatekeeping_header_is_refused_not_guessed(gate, header) -> None:
    gate, admission, port = gate
    request = (
        f"GET /binance/api/v3/ping?token={TOKEN} HTTP/1.1\r\nHost: x\r\n"
        f"{header}: Bearer {TOKEN}\r\n{header}: Bearer other\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["code"] == -1101
    assert admission.seen == []
