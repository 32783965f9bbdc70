"""The Binance dialect's REST over HTTP: Binance's headers, its answers and its errors."""

from __future__ import annotations

from tests.unit.gateway.binance_dialect_stack import EPOCH, Stack


async def test_rest_over_http_with_binance_headers_and_errors() -> None:
    async with Stack() as stack:
        status, headers, body = await stack.rest("/api/v3/ping")
        assert (status, body) == (200, {})
        assert headers["Content-Type"] == "application/json" and headers["X-MBX-USED-WEIGHT-1M"] == "1"
        assert "Date" in headers
        status, _, info = await stack.rest('/api/v3/exchangeInfo?symbols=["BTCUSD","SOLUSD"]')
        assert status == 200 and [s["symbol"] for s in info["symbols"]] == ["BTCUSD", "SOLUSD"]
        status, _, body = await stack.rest("/api/v3/depth?symbol=FOO")
        assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
        # No replica yet: read from "Redis"; when that fails, -1001.
        status, _, depth = await stack.rest("/api/v3/depth?symbol=ETHUSD")
        assert status == 200 and depth["lastUpdateId"] == stack.dialect.ids("ETH-USD").update_id(EPOCH, 0)
        stack.hub.redis_down = True
        status, _, body = await stack.rest("/api/v3/depth?symbol=ETHUSD")
        assert status == 503 and body["code"] == -1001
        status, _, body = await stack.rest("/ws/btcusd@depth")  # not an upgrade
        assert status == 426
