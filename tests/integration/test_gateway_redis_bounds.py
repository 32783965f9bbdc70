"""What clients can make the gateway read from Redis is bounded: history reads and the connection pool.

The gateway's own ``RedisLink`` against the real embedded Redis, fed by a synthetic md_service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.exceptions import MaxConnectionsError

from bookcast.bench.fanout_publisher import SyntheticPublisher
from gateway.core.counters import Counters
from gateway.redis_link import RedisLink
from mdcore.redis_layout import RedisLayout
from tests.integration.stack_helpers import unique

pytestmark = pytest.mark.integration


async def nothing() -> None:
    return None


@pytest_asyncio.fixture
async def published(infra) -> AsyncIterator[tuple[SyntheticPublisher, RedisLink]]:
    prefix = unique("gwbounds")
    publisher = SyntheticPublisher(infra.redis_url, prefix, ("BTC-USD",), seed=11)
    for _ in range(40):
        publisher.window()
    link = RedisLink(infra.redis_url, RedisLayout(prefix), Counters(), lambda *_: None, nothing)
    try:
        yield publisher, link
    finally:
        await link.close()
        publisher.close()


async def test_a_history_read_fetches_at_most_max_history_read_deltas(published) -> None:
    publisher, link = published
    head = publisher.pairs["BTC-USD"]
    assert head.seq == 40
    link.bound_reads(max_connections=4, pool_wait_s=1.0, max_history_read=10)
    near = await link.read_history("BTC-USD", head.epoch, head.seq - 10)
    assert near is not None and [seq for seq, _ in near] == list(range(31, 41))
    # 20 behind: the whole history is there, but a replay that long is not worth the read
    assert await link.read_history("BTC-USD", head.epoch, head.seq - 20) is None
    assert await link.read_history("BTC-USD", "another-epoch", head.seq - 5) is None
    link.bound_reads(max_connections=4, pool_wait_s=1.0, max_history_read=1000)
    far = await link.read_history("BTC-USD", head.epoch, head.seq - 20)
    assert far is not None and len(far) == 20


async def test_an_exhausted_pool_fails_fast_with_max_connections_error(published) -> None:
    _, link = published
    link.bound_reads(max_connections=2, pool_wait_s=0.05, max_history_read=1000)
    pool = link.client.connection_pool
    held = [await pool.get_connection(), await pool.get_connection()]
    with pytest.raises(MaxConnectionsError, match="2 Redis connections busy"):
        await link.load_book("BTC-USD")
    await pool.release(held.pop())
    book = await link.load_book("BTC-USD")  # a connection is free again
    assert book is not None and book.seq == 40
    await pool.release(held.pop())
