"""BookClient reconnects: ``since`` recovery, snapshot fallback, close codes 1001/1008, URL lists."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from clients import Backoff, BookClient, ClientClosedError, ClientConnectError
from tests.unit.clients.scripted_server import (
    ScriptedServer,
    SourceBook,
    T,
    book_levels,
    fast_options,
    open_synced,
)


async def _lose_connection(client, conn, how: str) -> None:
    if how == "drop":
        conn.drop()
    else:
        await conn.close(1011, "internal error")
    await client.wait_for(lambda: client.stats.disconnects == 1, T)


@pytest.mark.parametrize("how", ["drop", "close"])
async def test_reconnect_sends_since_and_applies_the_recovered_replay(server, source, how) -> None:
    eth = SourceBook.with_depth("ETH-USD", levels=5, epoch="x9", seq=40)
    client, conn = await open_synced(server, [source, eth])
    async with client:
        await conn.send(source.bump(), eth.bump())
        await client.wait_for(lambda: client.book("ETH-USD").seq == eth.seq, T)
        await _lose_connection(client, conn, how)
        assert not client.connected

        missed = [source.bump() for _ in range(3)]  # published while the client was away
        missed_eth = [eth.bump() for _ in range(2)]
        conn2 = await server.accept()
        op = await conn2.expect("subscribe")
        assert op["pairs"] == ["BTC-USD", "ETH-USD"]
        assert op["since"] == {
            "BTC-USD": {"epoch": "e1", "seq": missed[0].seq - 1},
            "ETH-USD": {"epoch": "x9", "seq": missed_eth[0].seq - 1},
        }
        await conn2.subscribed(op, recovered=True)
        await conn2.send(*missed, *missed_eth)
        await conn2.send(source.bump())  # and live deltas continue
        await client.wait_for(lambda: client.book("BTC-USD").seq == source.seq, T)
        await client.wait_for(lambda: client.book("ETH-USD").seq == eth.seq, T)
        assert book_levels(client, "BTC-USD") == source.levels()
        assert book_levels(client, "ETH-USD") == eth.levels()
        assert client.stats.recoveries == 1
        assert client.stats.reconnects == 1
        assert client.stats.snapshots == 2  # only the first connection's
        assert client.stats.gaps == client.stats.resyncs == 0


async def test_reconnect_falls_back_to_snapshots(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        await conn.send(source.bump())
        await client.wait_for(lambda: client.book("BTC-USD").seq == source.seq, T)
        await _lose_connection(client, conn, "drop")

        for _ in range(50):  # more than the gateway's history holds
            source.bump()
        conn2 = await server.accept()
        op = await conn2.expect("subscribe")
        assert op["since"]["BTC-USD"]["seq"] == source.seq - 50
        await conn2.subscribed(op)  # no "recovered": a snapshot follows
        await conn2.send(source.snapshot(), source.bump())
        await client.wait_for(lambda: client.book("BTC-USD").seq == source.seq, T)
        assert book_levels(client, "BTC-USD") == source.levels()
        assert client.stats.recoveries == 0
        assert client.stats.snapshots == 2


async def test_unsynced_pairs_resubscribe_without_since(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        source.bump()
        await conn.send(source.bump())  # gap -> waiting for a snapshot when the link drops
        await conn.expect("resync")
        await _lose_connection(client, conn, "drop")
        conn2 = await server.accept()
        op = await conn2.expect("subscribe")
        assert "since" not in op
        await conn2.send(source.snapshot())
        await client.wait_synced(timeout=T)
        assert book_levels(client, "BTC-USD") == source.levels()


async def test_going_away_moves_to_the_next_url(source) -> None:
    async with ScriptedServer() as first, ScriptedServer() as second:
        client = BookClient([first.url, second.url], ["BTC-USD"], options=fast_options())
        async with client:
            conn = await first.accept()
            op = await conn.expect("subscribe")
            await conn.send(source.snapshot())
            await client.wait_synced(timeout=T)
            await conn.close(1001, "draining")  # graceful gateway shutdown

            conn2 = await second.accept()
            op = await conn2.expect("subscribe")
            assert op["since"] == {"BTC-USD": {"epoch": source.epoch, "seq": source.seq}}
            await conn2.subscribed(op, recovered=True)
            await conn2.send(source.bump())
            await client.wait_for(lambda: client.book("BTC-USD").seq == source.seq, T)
            assert client.url == second.url
            assert book_levels(client, "BTC-USD") == source.levels()


class RecordingBackoff(Backoff):
    """The test backoff, remembering which attempt number each reconnect waited for."""

    attempts: list[int]

    def delay(self, attempt: int, rand=random.random) -> float:
        RecordingBackoff.attempts.append(attempt)
        return super().delay(attempt, rand)


@pytest.fixture
def recorded_attempts():
    RecordingBackoff.attempts = []
    return RecordingBackoff.attempts


async def test_policy_violation_close_backs_off_further_each_time(
    server, source, caplog, recorded_attempts
) -> None:
    opts = fast_options(backoff=RecordingBackoff(initial=0.01, maximum=0.05))
    client, conn = await open_synced(server, [source], options=opts)
    async with client:
        await conn.close(1008, "rate limit")
        conn2 = await server.accept()
        await conn2.expect("subscribe")
        await conn2.close(1008, "rate limit")
        conn3 = await server.accept()
        await conn3.expect("subscribe")
        assert recorded_attempts == [1, 2]  # growing delays, not a tight loop
        assert client.stats.disconnects == 2 and client.stats.reconnects == 2
        assert "policy violation: rate limit" in caplog.text


@pytest.mark.parametrize(
    ("code", "stable_after", "expected"),
    [
        (1001, 10.0, [0]),  # going away: the shortest (jittered) delay
        (1011, 10.0, [1]),  # lost soon after connecting: back off
        (1011, 1e-9, [0]),  # lost after a stable period: start over
    ],
)
async def test_backoff_attempt_after_a_close(server, source, recorded_attempts, code, stable_after, expected):
    opts = fast_options(backoff=RecordingBackoff(initial=0.01, maximum=0.05), stable_after=stable_after)
    client, conn = await open_synced(server, [source], options=opts)
    async with client:
        await conn.close(code)
        conn2 = await server.accept()
        await conn2.expect("subscribe")
        assert recorded_attempts == expected


async def test_first_connection_failure_is_raised_with_fail_fast() -> None:
    with socket.socket() as sock:  # bound, not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"
        client = BookClient(url, ["BTC-USD"], options=fast_options())
        with pytest.raises(ClientConnectError, match=r"cannot connect to ws://127\.0\.0\.1:"):
            await client.start()
        assert client.stats.connect_failures == 1
        await client.close()


async def test_without_fail_fast_the_client_retries_until_a_gateway_answers(source) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        refused = f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"
        async with ScriptedServer() as server:
            client = BookClient([refused, server.url], ["BTC-USD"], options=fast_options(fail_fast=False))
            async with client:
                conn = await server.accept()
                await conn.expect("subscribe")
                await conn.send(source.snapshot())
                await client.wait_synced(timeout=T)
                assert client.stats.connect_failures >= 1
                assert client.stats.reconnects == 0  # the first successful connection is no reconnect


async def test_close_during_backoff_returns_promptly(source) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"
        opts = fast_options(fail_fast=False, backoff=Backoff(initial=60, maximum=60))
        client = BookClient(url, ["BTC-USD"], options=opts)
        await client.start()
        await client.wait_for(lambda: client.stats.connect_failures == 1, T)
        async with asyncio.timeout(T):  # the 30-60 s backoff sleep must not hold close() up
            await client.close()
        assert client.closed
        with pytest.raises(ClientClosedError):
            await client.wait_synced(timeout=T)
