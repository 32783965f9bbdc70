"""Handshakes refused for load (HTTP 503/429): Retry-After as a floor, jitter on top, counted apart."""

from __future__ import annotations

import asyncio

import pytest

from clients import BookClient, ClientConnectError, cli
from tests.unit.clients.scripted_server import ScriptedServer, SourceBook, T, fast_options, open_synced

FLOOR = 0.3  # the Retry-After the tests' gateway sends, in seconds; far above fast_options' backoff


@pytest.mark.parametrize("status", [503, 429])
async def test_a_refused_reconnect_waits_for_retry_after(server, source, status) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        server.refuse(status, retry_after=str(FLOOR))
        conn.drop()
        first, second = (await server.wait_handshakes(3))[1:]
        assert first.status == status and second.status == 101
        assert second.at - first.at >= FLOOR  # fast_options alone would retry within 50 ms
        conn2 = await server.accept()
        op = await conn2.expect("subscribe")
        await conn2.subscribed(op, recovered=True)
        assert client.stats.handshake_refusals == 1
        assert client.stats.connect_failures == 0  # refusals are counted apart
        assert client.stats.reconnects == 1


async def test_a_refused_first_connection_is_not_fatal_and_is_retried(server, source) -> None:
    server.refuse(503, retry_after=str(FLOOR), times=2)
    client = BookClient(server.url, ["BTC-USD"], options=fast_options())  # fail_fast: True
    async with client:  # a busy gateway is no configuration error: start() does not raise
        assert not client.connected
        assert client.last_refusal is not None and client.last_refusal.status == 503
        conn = await server.accept()
        await conn.expect("subscribe")
        await conn.send(source.snapshot())
        await client.wait_synced(timeout=T)
        shakes = server.handshakes
        assert [h.status for h in shakes] == [503, 503, 101]
        assert shakes[1].at - shakes[0].at >= FLOOR and shakes[2].at - shakes[1].at >= FLOOR
        assert client.stats.handshake_refusals == 2 and client.stats.connect_failures == 0
        assert client.last_refusal is None


async def test_other_refusals_stay_connect_failures(server) -> None:
    server.refuse(401)
    client = BookClient(server.url, ["BTC-USD"], options=fast_options())
    with pytest.raises(ClientConnectError, match="HTTP 401"):
        await client.start()
    assert client.stats.connect_failures == 1 and client.stats.handshake_refusals == 0
    await client.close()


async def test_a_refused_gateway_does_not_hold_up_the_next_url(source) -> None:
    async with ScriptedServer() as busy, ScriptedServer() as other:
        busy.refuse(503, retry_after="60")
        client = BookClient([busy.url, other.url], ["BTC-USD"], options=fast_options())
        async with client:
            conn = await other.accept()  # not 60 s later: the floor belongs to the busy gateway
            await conn.expect("subscribe")
            await conn.send(source.snapshot())
            await client.wait_synced(timeout=T)
            assert client.url == other.url and client.stats.handshake_refusals == 1


async def test_watch_waits_out_a_busy_gateway(server, capsys) -> None:
    src = SourceBook.with_depth("BTC-USD", levels=3)
    server.refuse(503, retry_after=str(FLOOR))
    argv = ["watch", "BTC-USD", "--url", server.url, "--once"]
    run = asyncio.create_task(asyncio.to_thread(cli.main, argv))
    conn = await server.accept()
    op = await conn.expect("subscribe")
    await conn.subscribed(op)
    await conn.send(src.snapshot())
    async with asyncio.timeout(T):
        assert await run == 0
    assert server.handshakes[1].at - server.handshakes[0].at >= FLOOR
    assert capsys.readouterr().out.startswith("BTC-USD  LIVE")
