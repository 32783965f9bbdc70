"""UpdateStream: bounded, drops (and counts) the oldest when full, ends when closed and drained.

A consumer waiting on the stream is woken by callbacks the loop runs while it waits
(``loop.call_soon``), so nothing here sleeps. The last test shows the
same through BookClient.
"""

from __future__ import annotations

import asyncio

import pytest

from clients import BookUpdate, ClientStats
from clients.updates import UpdateStream
from tests.unit.clients.scripted_server import T, open_synced


def update(seq: int) -> BookUpdate:
    return BookUpdate("BTC-USD", "delta", "e1", seq, 1_000, 900, 1_500, 500, 600)


def test_maxsize_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        UpdateStream(0, ClientStats())


async def test_updates_come_out_in_arrival_order() -> None:
    stream = UpdateStream(10, ClientStats())
    for seq in (1, 2, 3):
        stream.put(update(seq))
    assert len(stream) == 3
    assert [(await stream.next()).seq for _ in range(3)] == [1, 2, 3]
    assert len(stream) == 0


async def test_a_full_stream_drops_the_oldest_and_counts_it() -> None:
    stats = ClientStats()
    stream = UpdateStream(2, stats)
    for seq in range(1, 6):
        stream.put(update(seq))
    assert stats.dropped_updates == 3
    assert [(await stream.next()).seq for _ in range(2)] == [4, 5]


async def test_next_returns_none_when_the_timeout_passes_first() -> None:
    stream = UpdateStream(1, ClientStats())
    assert await stream.next(timeout=0) is None
    assert not stream.closed


async def test_a_waiting_consumer_is_woken_by_the_next_update() -> None:
    stream = UpdateStream(1, ClientStats())
    asyncio.get_running_loop().call_soon(stream.put, update(7))
    got = await stream.next(timeout=T)
    assert got is not None and got.seq == 7


async def test_a_waiting_consumer_is_ended_by_close() -> None:
    stream = UpdateStream(1, ClientStats())
    asyncio.get_running_loop().call_soon(stream.close)
    with pytest.raises(StopAsyncIteration):
        await stream.next(timeout=T)


async def test_after_close_the_buffered_updates_still_come_then_the_end() -> None:
    stream = UpdateStream(10, ClientStats())
    stream.put(update(1))
    stream.put(update(2))
    stream.close()
    stream.put(update(3))  # no longer buffered
    assert [u.seq async for u in stream] == [1, 2]
    with pytest.raises(StopAsyncIteration):
        await stream.next()


async def test_close_tells_the_owner_once_and_async_with_closes() -> None:
    closed: list[UpdateStream] = []
    async with UpdateStream(1, ClientStats(), closed.append) as stream:
        assert not stream.closed
    assert stream.closed and closed == [stream]
    stream.close()
    assert closed == [stream]


def test_a_book_update_is_immutable() -> None:
    with pytest.raises(AttributeError):
        update(1).seq = 2  # type: ignore[misc]


# --- through BookClient --------------------------------


async def test_a_lagging_stream_drops_the_oldest_updates(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client, client.updates(maxsize=2) as stream:
        await conn.send(*(source.bump() for _ in range(5)))
        await client.wait_for(lambda: client.book("BTC-USD").seq == source.seq, T)
        assert client.stats.dropped_updates == 3
        assert [(await stream.next(T)).seq for _ in range(2)] == [source.seq - 1, source.seq]
        assert await stream.next(timeout=0) is None
