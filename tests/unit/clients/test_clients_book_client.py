"""BookClient's public surface: updates, callbacks, runtime requests, waiting, argument checks.

Frames on one connection are test_clients_session.py, pings test_clients_pings.py, which
gateway and when test_clients_dialer.py; the reconnect loop test_clients_reconnect.py.
"""

from __future__ import annotations

import asyncio

import pytest

from clients import BookClient, BookUpdate, NotConnectedError
from mdcore.errors import UnknownPairError
from tests.unit.clients.scripted_server import SourceBook, T, book_levels, fast_options, open_synced


async def test_unsolicited_snapshot_replaces_the_book(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        # The gateway conflates a slow client by sending a fresh snapshot far ahead.
        for _ in range(3):
            source.bump()
        source.delta(asks=[(source.levels()[1][0][0], "0")])
        await conn.send(source.snapshot())
        await client.wait_for(lambda: client.book("BTC-USD").seq == source.seq, T)
        assert book_levels(client, "BTC-USD") == source.levels()
        assert client.stats.snapshots == 2
        assert client.stats.resyncs == 0


async def test_updates_stream_and_callback_see_every_applied_message(server, source) -> None:
    seen: list[BookUpdate] = []
    client = BookClient(server.url, ["BTC-USD"], options=fast_options(), on_update=seen.append)
    async with client:
        stream = client.updates()
        conn = await server.accept()
        await conn.expect("subscribe")
        await conn.send(source.snapshot())
        await conn.send(source.bump(), source.bump())
        got = [await asyncio.wait_for(stream.__anext__(), T) for _ in range(3)]
        assert [(u.kind, u.seq) for u in got] == [
            ("snapshot", source.seq - 2),
            ("delta", source.seq - 1),
            ("delta", source.seq),
        ]
        assert seen == got
        delta = got[-1]
        assert delta.pair == "BTC-USD" and delta.epoch == source.epoch
        assert delta.xts is not None and delta.exchange_latency_ns is not None
        assert delta.exchange_latency_ns == delta.received_ns - delta.xts
        assert delta.window_latency_ns == delta.received_ns - delta.ts
        assert client.stats.last_exchange_latency_ns == delta.exchange_latency_ns
        assert client.stats.last_window_latency_ns == delta.window_latency_ns
        assert got[0].xts is None and got[0].exchange_latency_ns is None
    # Closing the client ends the stream.
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(stream.__anext__(), T)


async def test_a_failing_callback_is_counted_not_fatal(server, source) -> None:
    def explode(update: BookUpdate) -> None:
        raise RuntimeError("user bug")

    client, conn = await open_synced(server, [source], on_update=explode)
    async with client:
        await conn.send(source.bump())
        await client.wait_for(lambda: client.book("BTC-USD").seq == source.seq, T)
        assert client.stats.callback_errors == 2  # the snapshot and the delta
        assert book_levels(client, "BTC-USD") == source.levels()


async def test_subscribe_and_unsubscribe_at_runtime(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        eth = SourceBook.with_depth("ETH-USD", levels=4)
        assert await client.subscribe(["ETH-USD", "BTC-USD"]) == ["ETH-USD"]
        op = await conn.expect("subscribe")
        assert op["pairs"] == ["ETH-USD"] and "since" not in op
        await conn.send(eth.snapshot())
        await client.wait_synced(["ETH-USD"], timeout=T)
        assert book_levels(client, "ETH-USD") == eth.levels()

        view = client.book("BTC-USD")
        assert await client.unsubscribe(["BTC-USD"]) == ["BTC-USD"]
        op = await conn.expect("unsubscribe")
        assert op["pairs"] == ["BTC-USD"]
        assert not view.synced and client.pairs == ("ETH-USD",)
        await conn.send(source.bump())  # in flight before the unsubscribe landed
        await client.wait_for(lambda: client.stats.unexpected == 1, T)
        with pytest.raises(UnknownPairError):
            await client.subscribe(["NOPE-USD"])


async def test_ping_without_a_connection_raises(server, source) -> None:
    client = BookClient(server.url, ["BTC-USD"], options=fast_options(fail_fast=False))
    with pytest.raises(NotConnectedError):
        await client.ping()


async def test_wait_synced_times_out_without_a_snapshot(server) -> None:
    async with BookClient(server.url, ["BTC-USD"], options=fast_options()) as client:
        await server.accept()
        with pytest.raises(TimeoutError):
            await client.wait_synced(timeout=0.05)
        with pytest.raises(KeyError):
            await client.wait_synced(["ETH-USD"], timeout=T)


def test_bad_arguments_fail_before_any_io() -> None:
    with pytest.raises(ValueError, match="ws://"):
        BookClient("http://127.0.0.1/ws", ["BTC-USD"])
    with pytest.raises(ValueError, match="URL"):
        BookClient([], ["BTC-USD"])
    with pytest.raises(UnknownPairError):
        BookClient("ws://127.0.0.1:1/ws", ["NOPE-USD"])
