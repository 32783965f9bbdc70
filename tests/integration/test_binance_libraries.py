"""The Binance libraries people use keep correct books from bookcast, on the real stack.

Feed -> Kafka -> md_service -> Redis -> gateway, and on the gateway's ``/binance`` paths:

- ccxt's ``ccxt.pro.binance`` ``watch_order_book_for_symbols`` (it connects to ``/ws/<n>``,
  subscribes, loads markets from ``exchangeInfo`` and snapshots from ``depth``);
- python-binance's ``DepthCacheManager`` (``/ws/<symbol>@depth@100ms`` and ``depth``).

Each library is pointed at 127.0.0.1 by its own settings, and every URL it asked for is
checked to be there. After the feed stops, each library's book must equal REST depth at the
same update id.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import urllib.request
import warnings
from collections.abc import Iterator

import ccxt.pro
import orjson
import pytest

from bookcast.processes import TierProcess
from tests.integration.pipeline_helpers import feed_in_background, feed_settings
from tests.integration.stack_helpers import isolated_stack, wait_until_async

with warnings.catch_warnings():  # python-binance imports websockets' legacy client names
    warnings.simplefilter("ignore", DeprecationWarning)
    from binance import AsyncClient, BinanceSocketManager, DepthCacheManager

pytestmark = pytest.mark.integration

PAIRS = ("BTC-USD", "ETH-USD")


@pytest.fixture
def stack(infra) -> Iterator[dict]:
    env, _, _ = isolated_stack(infra, "bnlib", PAIRS, 8, binance_weight_limit="1000000")
    procs = {
        "md": TierProcess("md", "md_service", env=env).start(),
        "gateway": TierProcess("gateway", "gateway", env=env, listens=True).start(),
    }
    stop_feed = threading.Event()
    feed = feed_in_background(feed_settings(env, PAIRS, 200, 9, 8), None, stop_feed)

    def freeze() -> None:
        stop_feed.set()
        feed.join(timeout=30)

    try:
        yield {"gateway": procs["gateway"], "freeze": freeze}
    finally:
        freeze()
        for proc in procs.values():
            proc.stop()


def _depth(rest_base: str, symbol: str) -> dict:
    url = f"{rest_base}/api/v3/depth?symbol={symbol}&limit=5000"
    with urllib.request.urlopen(url, timeout=10) as response:
        return orjson.loads(response.read())


def _floats(levels: list) -> list[tuple[float, float]]:
    return [(float(price), float(qty)) for price, qty, *_ in levels]


async def _equal_to_rest_once_aligned(rest_base: str, symbol: str, book_at) -> None:
    """Wait until the library's book is at REST depth's update id, then the two must be equal."""

    async def aligned() -> bool:
        depth = await asyncio.to_thread(_depth, rest_base, symbol)
        update_id, bids, asks = book_at()
        if update_id != depth["lastUpdateId"]:
            return False
        assert bids == _floats(depth["bids"]), symbol
        assert asks == _floats(depth["asks"]), symbol
        return True

    await wait_until_async(aligned, what=f"{symbol}: the library's book at REST depth's update id")


async def test_ccxt_pro_watch_order_book_keeps_bookcast_books(stack) -> None:
    port = stack["gateway"].port
    rest_base, ws_base = f"http://127.0.0.1:{port}/binance", f"ws://127.0.0.1:{port}/binance"
    exchange = ccxt.pro.binance(
        {"options": {"fetchMarkets": {"types": ["spot"]}, "watchOrderBookLimit": 5000}}
    )  # spot only: bookcast serves no futures or margin endpoints
    exchange.urls["api"]["public"] = f"{rest_base}/api/v3"
    exchange.urls["api"]["ws"]["spot"] = f"{ws_base}/ws"
    asked: list[str] = []
    fetch = exchange.fetch

    async def recorded_fetch(url, method="GET", headers=None, body=None):
        asked.append(url)
        return await fetch(url, method, headers, body)

    exchange.fetch = recorded_fetch
    symbols = ["BTC/USD", "ETH/USD"]
    errors: list[Exception] = []

    async def watch() -> None:
        while True:
            try:
                await exchange.watch_order_book_for_symbols(symbols)
            except ccxt.pro.ChecksumError as exc:  # a gap: ccxt drops the book and we watch again
                errors.append(exc)

    watcher = asyncio.create_task(watch())
    try:
        await wait_until_async(lambda: all(s in exchange.orderbooks for s in symbols), what="ccxt's books")
        stack["freeze"]()

        def book_of(symbol: str):
            def at() -> tuple[int | None, list, list]:
                book = exchange.orderbooks[symbol]
                return book["nonce"], [tuple(x) for x in book["bids"]], [tuple(x) for x in book["asks"]]

            return at

        for symbol in symbols:
            await _equal_to_rest_once_aligned(rest_base, symbol.replace("/", ""), book_of(symbol))
        connected = list(exchange.clients)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await exchange.close()
    assert not errors, errors
    assert asked and all(url.startswith(f"{rest_base}/api/v3/") for url in asked), asked
    assert {url.split("?")[0].rsplit("/", 1)[1] for url in asked} == {"exchangeInfo", "depth"}
    assert connected == [f"{ws_base}/ws/0"]  # the connection-index path ccxt uses


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # python-binance on websockets' legacy API
async def test_python_binance_depth_cache_keeps_bookcast_books(stack) -> None:
    port = stack["gateway"].port
    rest_base = f"http://127.0.0.1:{port}/binance"
    client = AsyncClient()  # not AsyncClient.create(): that pings api.binance.com first
    client.API_URL = f"{rest_base}/api"
    asked: list[str] = []
    request = client._request

    async def recorded_request(method, uri, signed, force_params=False, **kwargs):
        asked.append(uri)
        return await request(method, uri, signed, force_params, **kwargs)

    client._request = recorded_request
    sockets = BinanceSocketManager(client)
    sockets.STREAM_URL = f"ws://127.0.0.1:{port}/binance/"
    caches = {
        symbol: DepthCacheManager(client, symbol, bm=sockets, limit=5000, ws_interval=100)
        for symbol in ("BTCUSD", "ETHUSD")
    }
    try:
        async with contextlib.AsyncExitStack() as managers:
            readers = []
            for manager in caches.values():
                await managers.enter_async_context(manager)

                async def read(manager=manager) -> None:
                    while True:
                        await manager.recv()

                readers.append(asyncio.create_task(read()))
            try:
                stack["freeze"]()
                for symbol, manager in caches.items():

                    def at(manager=manager) -> tuple[int | None, list, list]:
                        cache = manager.get_depth_cache()
                        bids, asks = cache.get_bids(), cache.get_asks()
                        return manager._last_update_id, [tuple(b) for b in bids], [tuple(a) for a in asks]

                    await _equal_to_rest_once_aligned(rest_base, symbol, at)
                opened = [f"{c._url}{c._prefix}{c._path}" for c in sockets._conns.values()]
            finally:
                for reader in readers:
                    reader.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
    finally:
        await client.close_connection()
    assert asked and all(uri.startswith(f"{rest_base}/api/v3/depth") for uri in asked), asked
    streams = f"ws://127.0.0.1:{port}/binance/ws"
    assert sorted(opened) == [f"{streams}/btcusd@depth@100ms", f"{streams}/ethusd@depth@100ms"]
