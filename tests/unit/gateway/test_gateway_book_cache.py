"""gateway.book_cache: cold snapshot reads, one at a time per pair, kept for ``ttl_s``."""

from __future__ import annotations

import asyncio

import pytest

from gateway.book_cache import BookCache
from tests.unit.gateway.gateway_fakes import Loads


async def test_book_cache_shares_failures_without_keeping_them_and_survives_a_leaving_requester() -> None:
    loads = Loads(ConnectionError("down"))
    cache = BookCache(loads, ttl_s=10.0)
    first = asyncio.create_task(cache.get("BTC-USD"))
    second = asyncio.create_task(cache.get("BTC-USD"))
    await asyncio.sleep(0)
    first.cancel()  # a client that went away must not cancel the read the other waits for
    loads.release.set()
    with pytest.raises(ConnectionError):
        await second
    assert loads.calls == 1
    loads.result = None  # Redis is back; the pair has no stream
    assert (await cache.get("BTC-USD")).book is None and loads.calls == 2  # the failure was not kept


async def test_book_cache_reads_again_once_its_answer_is_older_than_ttl() -> None:
    now = [0.0]
    loads = Loads(None)
    loads.release.set()
    cache = BookCache(loads, ttl_s=0.5, clock=lambda: now[0])
    await cache.get("BTC-USD")
    now[0] = 0.4
    await cache.get("BTC-USD")
    assert loads.calls == 1
    now[0] = 0.6
    await cache.get("BTC-USD")
    assert loads.calls == 2
    uncached = BookCache(loads, ttl_s=0.0)
    await uncached.get("BTC-USD")
    await uncached.get("BTC-USD")
    assert loads.calls == 4
