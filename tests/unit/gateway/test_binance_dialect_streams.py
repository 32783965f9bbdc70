"""The Binance dialect's stream connections over the wire: handshakes, methods, rates and ticks."""

from __future__ import annotations

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.unit.gateway.binance_dialect_stack import Stack, until


async def test_handshake_refuses_unknown_streams() -> None:
    async with Stack() as stack:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"{stack.ws_base}/ws/dogeusd@depth"):
                pass
        assert info.value.response.status_code == 400
        assert orjson.loads(info.value.response.body)["code"] == 2


async def test_methods_over_the_wire_and_combined_by_property() -> None:
    async with Stack() as stack, connect(f"{stack.ws_base}/ws/btcusd@depth@100ms") as ws:
        await ws.send('{"method":"SUBSCRIBE","params":["ethusd@depth@100ms","btcusd@depth@100ms"],"id":1}')
        assert orjson.loads(await ws.recv()) == {"result": None, "id": 1}
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":2}')
        assert orjson.loads(await ws.recv()) == {
            "result": ["btcusd@depth@100ms", "ethusd@depth@100ms"],
            "id": 2,
        }
        stack.hub.publish("BTC-USD")
        event = orjson.loads(await ws.recv())
        assert (
            event["e"] == "depthUpdate"
            and event["s"] == "BTCUSD"
            and event["U"] == stack.update_id("BTC-USD")
        )
        await ws.send('{"method":"SET_PROPERTY","params":["combined",true],"id":3}')
        assert orjson.loads(await ws.recv()) == {"result": None, "id": 3}
        stack.hub.publish("ETH-USD")
        wrapped = orjson.loads(await ws.recv())
        assert wrapped["stream"] == "ethusd@depth@100ms" and wrapped["data"]["s"] == "ETHUSD"
        await ws.send('{"method":"UNSUBSCRIBE","params":["btcusd@depth@100ms","ethusd@depth@100ms"],"id":4}')
        assert orjson.loads(await ws.recv()) == {"result": None, "id": 4}
        await until(lambda: not +stack.hub.wanted)


async def test_over_five_messages_a_second_closes_with_1008() -> None:
    async with Stack() as stack, connect(f"{stack.ws_base}/ws") as ws:
        for i in range(6):
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}).decode())
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        assert stack.dialect.counters["closed_over_rate"] == 1


async def test_slow_streams_and_partial_books_come_with_the_ticks() -> None:
    async with (
        Stack() as stack,
        connect(f"{stack.ws_base}/ws/btcusd@depth/btcusd@depth5@100ms/btcusd@depth10") as ws,
    ):
        await until(lambda: stack.hub.wanted["BTC-USD"] == 1)
        stack.dialect.tick(stack.now_ms)  # a new second: partial 1000 ms (nothing folded yet)
        first = orjson.loads(await ws.recv())
        assert first["lastUpdateId"] == stack.update_id("BTC-USD") and len(first["bids"]) <= 10
        for _ in range(3):
            stack.hub.publish("BTC-USD")
        stack.now_ms += 100
        stack.dialect.tick(stack.now_ms)  # same second: the 100 ms partial only
        partial = orjson.loads(await ws.recv())
        assert partial["lastUpdateId"] == stack.update_id("BTC-USD") and len(partial["bids"]) <= 5
        stack.now_ms += 900
        stack.dialect.tick(stack.now_ms)  # next second: the fold of three windows, then @depth10
        folded = orjson.loads(await ws.recv())
        assert (folded["e"], folded["u"] - folded["U"], folded["u"]) == (
            "depthUpdate",
            2,
            stack.update_id("BTC-USD"),
        )
        assert orjson.loads(await ws.recv())["lastUpdateId"] == folded["u"]


async def test_an_unhashable_stream_name_is_answered_with_code_2_and_the_connection_kept() -> None:
    async with Stack() as stack, connect(f"{stack.ws_base}/ws") as ws:
        await ws.send('{"method":"SUBSCRIBE","params":[["x"]],"id":1}')
        assert orjson.loads(await ws.recv()) == {
            "error": {"code": 2, "msg": "Invalid request: invalid stream"},
            "id": 1,
        }
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":2}')
        assert orjson.loads(await ws.recv()) == {"result": [], "id": 2}


async def test_ccxt_style_connection_index_path_opens_and_subscribes() -> None:
    async with Stack() as stack, connect(f"{stack.ws_base}/ws/0") as ws:
        await ws.send('{"method":"SUBSCRIBE","params":["btcusd@depth@100ms"],"id":1}')
        assert orjson.loads(await ws.recv()) == {"result": None, "id": 1}
        stack.hub.publish("BTC-USD")
        assert orjson.loads(await ws.recv())["U"] == stack.update_id("BTC-USD")
