"""LoadConnection: websockets' sans-I/O protocol on a bare transport, against the scripted gateway.

Real sockets on loopback, as the other client tests; the whole generator against a real
stack is tests/integration/test_load_stack.py.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from websockets.exceptions import InvalidStatus
from websockets.uri import parse_uri

from clients.load.checker import StreamChecker
from clients.load.connection import open_connection
from clients.load.stats import Latencies, LoadCounters
from mdcore.codec import encode_snapshot
from tests.unit.clients.scripted_server import T


class WatchedChecker(StreamChecker):
    """A StreamChecker that wakes the test after every frame it checks."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.checked = asyncio.Event()

    def on_frame(self, data: bytes, received_ns: int) -> None:
        super().on_frame(data, received_ns)
        self.checked.set()

    async def until(self, predicate) -> None:
        """Wait (at most T) until ``predicate()`` holds, re-checking after each frame."""
        async with asyncio.timeout(T):
            while not predicate():
                self.checked.clear()
                await self.checked.wait()


def checker(pairs=("BTC-USD",)) -> tuple[WatchedChecker, LoadCounters]:
    counters = LoadCounters()
    return WatchedChecker(pairs, counters, Latencies()), counters


async def test_it_handshakes_subscribes_checks_frames_and_closes_cleanly(server, source) -> None:
    check, counters = checker()
    connection = await open_connection(parse_uri(server.url), check, timeout=T)
    assert connection.opened.done()
    conn = await server.accept()
    op = await conn.expect("subscribe")
    assert op["pairs"] == ["BTC-USD"]
    await conn.subscribed(op)
    await conn.send(source.snapshot())
    await conn.send(source.bump())
    await check.until(lambda: counters.deltas == 1)
    assert (counters.acks, counters.snapshots, counters.frames) == (1, 1, 3)

    connection.close()
    async with asyncio.timeout(T):
        await connection.closed
        await conn.closed.wait()
    assert connection.closing
    assert conn.ws.close_code == 1000


async def test_ops_the_checker_queues_go_out_on_the_connection(server, source) -> None:
    check, counters = checker()
    await open_connection(parse_uri(server.url), check, timeout=T)
    conn = await server.accept()
    await conn.subscribed(await conn.expect("subscribe"))
    await conn.send(source.snapshot())
    source.bump()  # never sent: the next delta is a gap
    await conn.send(source.bump())
    op = await conn.expect("resync")
    assert op["pair"] == "BTC-USD" and counters.gaps == 1


async def test_a_fragmented_message_is_joined_before_it_is_checked(server, source) -> None:
    check, counters = checker()
    await open_connection(parse_uri(server.url), check, timeout=T)
    conn = await server.accept()
    await conn.expect("subscribe")
    text = encode_snapshot(source.snapshot()).decode()
    cut = len(text) // 3
    await conn.ws.send([text[:cut], text[cut : 2 * cut], text[2 * cut :]])  # one message, three frames
    await check.until(lambda: counters.snapshots == 1)
    assert counters.bad_frames == 0 and counters.frames == 1
    assert orjson.loads(text)["seq"] == source.seq


async def test_a_refused_handshake_fails_the_open(server) -> None:
    server.refuse(503, retry_after="1")
    check, counters = checker()
    with pytest.raises(InvalidStatus) as caught:
        await open_connection(parse_uri(server.url), check, timeout=T)
    assert caught.value.response.status_code == 503
    assert counters.frames == 0


async def test_abort_drops_the_connection_at_once(server) -> None:
    check, _ = checker()
    connection = await open_connection(parse_uri(server.url), check, timeout=T)
    conn = await server.accept()
    await conn.expect("subscribe")
    connection.abort()
    async with asyncio.timeout(T):
        await connection.closed
        await conn.closed.wait()
    assert connection.closing
    assert conn.ws.close_code != 1000  # no closing handshake
