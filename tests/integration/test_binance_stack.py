"""Binance dialect on the real stack: a client written from Binance's docs keeps exact books.

Feed -> Kafka -> md_service -> Redis -> gateway (Binance paths under ``/binance``), read by
the reference client in all three stream modes on three symbols, through an md_service
SIGKILL and restart and a forced unrecoverable gap (the pair's Redis stream wiped, so
md_service starts a new epoch). Each client's book must equal REST depth at the same
``lastUpdateId``, and the wiped pair must have been resynced, never silently skipped.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from collections.abc import Iterator

import orjson
import pytest
import redis

from bookcast.processes import TierProcess
from mdcore.redis_layout import RedisLayout
from tests.binance_client.binance_reference_client import ReferenceDepthClient
from tests.integration.pipeline_helpers import feed_in_background, feed_settings
from tests.integration.stack_helpers import (
    TIMEOUT,
    isolated_stack,
    stored_state,
    wait_until,
    wait_until_async,
)

pytestmark = pytest.mark.integration

PAIRS = ("BTC-USD", "ETH-USD", "SOL-USD")
SYMBOLS = [p.replace("-", "") for p in PAIRS]
WIPED = "ETH-USD"


@pytest.fixture
def stack(infra) -> Iterator[dict]:
    env, _, prefix = isolated_stack(
        infra, "bn", PAIRS, 8,
        binance_weight_limit="1000000",  # every depth snapshot of 5000 levels weighs 250
    )  # fmt: skip
    procs = {
        "md": TierProcess("md", "md_service", env=env).start(),
        "gateway": TierProcess("gateway", "gateway", env=env, listens=True).start(),
    }
    stop_feed = threading.Event()
    feed = feed_in_background(feed_settings(env, PAIRS, 300, 5, 8), None, stop_feed)
    try:
        yield {"env": env, "prefix": prefix, "procs": procs, "stop_feed": stop_feed}
    finally:
        stop_feed.set()
        feed.join(timeout=30)
        for proc in procs.values():
            proc.stop()


def _depth(rest_base: str, symbol: str) -> dict:
    with urllib.request.urlopen(f"{rest_base}/api/v3/depth?symbol={symbol}&limit=5000", timeout=10) as r:
        return orjson.loads(r.read())


async def _books_match_rest(clients: list[ReferenceDepthClient], rest_base: str) -> None:
    """Each client's book equals REST depth fetched at the same lastUpdateId (retried until aligned)."""
    for client in clients:
        for symbol in SYMBOLS:
            book = client.books[symbol]

            async def aligned(book=book, symbol=symbol, mode=client.mode) -> bool:
                depth = await asyncio.to_thread(_depth, rest_base, symbol)
                if book.last_update_id != depth["lastUpdateId"]:
                    return False
                assert book.sorted_bids() == depth["bids"], (mode, symbol)
                assert book.sorted_asks() == depth["asks"], (mode, symbol)
                return True

            await wait_until_async(aligned, what=f"{client.mode} {symbol} at REST depth's lastUpdateId")


async def test_reference_client_books_equal_rest_depth_through_restart_and_gap(stack, infra) -> None:
    gateway = stack["procs"]["gateway"]
    ws_base, rest_base = f"ws://127.0.0.1:{gateway.port}/binance", f"{gateway.http_url}/binance"
    clients = [
        ReferenceDepthClient(ws_base, rest_base, SYMBOLS, mode=m) for m in ("raw", "subscribe", "combined")
    ]
    for client in clients:
        await client.__aenter__()
    try:
        for client in clients:
            await client.wait_for(lambda c=client: all(b.synced for b in c.books.values()), TIMEOUT)
        await _books_match_rest(clients, rest_base)

        # md_service dies mid-stream and comes back: the same epoch continues, ids stay contiguous.
        md = stack["procs"]["md"]
        seq_before = int(stored_state(infra.redis_url, stack["prefix"], "BTC-USD")["seq"])
        md.kill()
        stack["procs"]["md"] = md = TierProcess("md", "md_service", env=stack["env"]).start()
        wait_until(
            lambda: (
                int(stored_state(infra.redis_url, stack["prefix"], "BTC-USD").get("seq", 0)) > seq_before + 5
            ),
            what="md_service to publish again after its restart",
        )
        await _books_match_rest(clients, rest_base)
        resyncs_before = {c.mode: c.books[WIPED.replace("-", "")].resyncs for c in clients}

        # A gap nothing can fill: the pair's stream vanishes from Redis, md_service starts a new epoch.
        layout = RedisLayout(stack["prefix"])
        r = redis.Redis.from_url(infra.redis_url)
        epoch_before = r.hget(layout.state_key(WIPED), "epoch")
        r.delete(layout.state_key(WIPED), layout.snapshot_key(WIPED), layout.history_key(WIPED))
        wait_until(
            lambda: r.hget(layout.state_key(WIPED), "epoch") not in (None, epoch_before),
            what="md_service to start a new epoch for the wiped pair",
        )
        r.close()
        for client in clients:
            book = client.books[WIPED.replace("-", "")]
            await client.wait_for(
                lambda b=book, c=client: b.resyncs > resyncs_before[c.mode] and b.synced, TIMEOUT
            )
        await _books_match_rest(clients, rest_base)
        for client in clients:
            assert client.books["BTCUSD"].resyncs == 0 and client.books["SOLUSD"].resyncs == 0, client.mode
        assert clients[1].replies[0] == {"result": None, "id": 1}
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)
