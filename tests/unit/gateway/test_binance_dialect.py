"""The Binance dialect end to end: reference clients follow books through gaps and new epochs.

On a real websockets server fed by a fake hub (``binance_dialect_stack``); the client knows
nothing of bookcast. Also the connection's own settings and a server's shutdown.
"""

from __future__ import annotations

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.binance.config import BinanceConfig
from tests.binance_client.binance_reference_client import ReferenceDepthClient
from tests.unit.gateway.binance_dialect_stack import PAIRS, Stack, until


async def _converge(stack: Stack, client: ReferenceDepthClient, pair: str) -> None:
    """Publish until the client's book is at the replica's id, then check it equals REST depth there."""
    symbol = pair.replace("-", "")
    book = client.books[symbol]
    for _ in range(100):
        stack.hub.publish(pair)
        try:
            await client.wait_for(lambda: book.last_update_id == stack.update_id(pair), 0.2)
            break
        except TimeoutError:
            continue
    status, _, depth = await stack.rest(f"/api/v3/depth?symbol={symbol}&limit=5000")
    assert status == 200
    assert book.last_update_id == depth["lastUpdateId"] == stack.update_id(pair)
    assert book.sorted_bids() == depth["bids"] and book.sorted_asks() == depth["asks"]


async def test_reference_clients_in_every_mode_follow_three_symbols_through_gaps_and_epochs() -> None:
    symbols = [p.replace("-", "") for p in PAIRS]
    # The clock is frozen in one minute, and every snapshot here costs 250 weight: lift the limit.
    async with Stack(BinanceConfig(weight_limit=10**6)) as stack:
        clients = [
            ReferenceDepthClient(stack.ws_base, stack.rest_base, symbols, mode=mode)
            for mode in ("raw", "subscribe", "combined")
        ]
        for client in clients:
            await client.__aenter__()
        try:
            await until(
                lambda: all(stack.hub.wanted[p] for p in PAIRS) and len(stack.dialect.connections) == 3
            )
            for client in clients:
                for pair in PAIRS:
                    await _converge(stack, client, pair)
            # BTC: the replica lost windows for good and reloaded; ETH: md_service started a new epoch.
            for _ in range(3):
                stack.hub.publish("BTC-USD", deliver=False)
            stack.hub.reload("BTC-USD")
            stack.hub.sources["ETH-USD"].epoch = "1732190460000-bbbbbb"
            stack.hub.sources["ETH-USD"].seq = 0
            stack.hub.reload("ETH-USD")
            for client in clients:
                for pair in PAIRS:
                    await _converge(stack, client, pair)
            for client in clients:
                assert client.books["BTCUSD"].resyncs == 1
                assert client.books["ETHUSD"].resyncs == 1
                assert client.books["SOLUSD"].resyncs == 0
                assert client.connects == 1 and not client.errors
            assert clients[1].replies == [{"result": None, "id": 1}]
        finally:
            for client in clients:
                await client.__aexit__(None, None, None)
        await until(lambda: not stack.dialect.connections and not +stack.hub.wanted)


async def test_binance_connections_get_keepalive_and_room_for_a_large_subscribe() -> None:
    async with Stack() as stack, connect(f"{stack.ws_base}/ws") as ws:
        (conn,) = [c.ws for c in stack.dialect.connections] or [None]
        assert (conn.ping_interval, conn.ping_timeout) == (20.0, 60.0)
        params = ["btcusd@depth@100ms"] * 1500  # about 30 KB, above the server's 4 KiB
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": params, "id": 1}).decode())
        assert orjson.loads(await ws.recv()) == {"result": None, "id": 1}


async def test_close_all_closes_with_going_away() -> None:
    async with Stack() as stack, connect(f"{stack.ws_base}/stream?streams=btcusd@depth") as ws:
        await until(lambda: len(stack.dialect.connections) == 1)
        await stack.dialect.close_all()
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
