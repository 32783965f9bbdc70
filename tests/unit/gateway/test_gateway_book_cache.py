"""gateway.book_cache: cold snapshot reads, one at a time per pair, kept for ``ttl_s``."""

from __future__ import annotations

import asyncio

import pytest

from gateway.book_cache import SWEEP_ABOVE, BookCache
from mdcore.codec import encode_snapshot
from tests.unit.gateway.gateway_fakes import Loads, wait_until
from tests.unit.gateway.md_service_free_fixtures import Stream


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


async def test_concurrent_requests_share_one_read_and_its_encoded_snapshot() -> None:
    stream = Stream("BTC-USD", 5)
    loads = Loads(stream.book_at(5))
    cache = BookCache(loads, ttl_s=10.0, clock=lambda: 0.0)
    waiting = [asyncio.ensure_future(cache.get("BTC-USD")) for _ in range(3)]
    await wait_until(lambda: loads.calls == 1)
    loads.release.set()
    answers = await asyncio.gather(*waiting)
    assert loads.calls == 1 and all(a is answers[0] for a in answers)
    assert (cache.stats.reads, cache.stats.shared, cache.stats.hits) == (1, 2, 0)
    full = answers[0].full_snapshot()
    assert full is answers[0].full_snapshot()  # encoded once, then shared
    assert full == encode_snapshot(stream.book_at(5).to_snapshot())
    await cache.get("BTC-USD")
    assert cache.stats.hits == 1 and loads.calls == 1


async def test_expired_entries_are_swept_once_the_cache_is_large() -> None:
    now = [0.0]
    loads = Loads(None)
    loads.release.set()
    cache = BookCache(loads, ttl_s=1.0, clock=lambda: now[0])
    for i in range(SWEEP_ABOVE):
        await cache.get(f"P{i}")
    assert len(cache._kept) == SWEEP_ABOVE  # (memory is what the sweep bounds: read it directly)
    now[0] = 0.5
    await cache.get("FRESH")  # at the bound, but nothing has expired: all kept
    assert len(cache._kept) == SWEEP_ABOVE + 1
    now[0] = 1.2  # the first SWEEP_ABOVE have expired, FRESH has not
    await cache.get("LATE")
    assert set(cache._kept) == {"FRESH", "LATE"}
    await cache.get("FRESH")
    assert cache.stats.hits == 1 and loads.calls == SWEEP_ABOVE + 2
