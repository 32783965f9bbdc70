"""BookClient against a scripted gateway: gap, new epoch and checksum mismatch all lead to one resync."""

from __future__ import annotations

import dataclasses

import pytest

from mdcore.messages import Ping
from tests.unit.clients.scripted_server import T, book_levels, fast_options, open_synced


async def test_snapshot_then_deltas_track_the_source(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        for _ in range(5):
            await conn.send(source.bump())
        await client.wait_for(lambda: client.book("BTC-USD").seq == source.seq, T)
        assert book_levels(client, "BTC-USD") == source.levels()
        assert client.stats.deltas == 5
        assert client.stats.snapshots == 1
        assert client.stats.gaps == client.stats.resyncs == 0


async def _resync_and_recover(client, conn, source, lost_sync_stat: str) -> None:
    """Common tail: exactly one resync is sent, deltas wait, and the new snapshot restores the book."""
    op = await conn.expect("resync")
    assert op["pair"] == "BTC-USD"
    assert getattr(client.stats, lost_sync_stat) == 1
    assert not client.book("BTC-USD").synced
    assert client.book("BTC-USD").best_bid() is None  # an unsynced book shows nothing

    # More deltas while waiting: ignored, and no second resync (the ping below is the next op).
    await conn.send(source.bump())
    await conn.send(source.bump())
    await client.wait_for(lambda: client.stats.ignored_deltas == 2, T)
    ping_id = client._books.next_id()
    await client._send_if_connected([Ping(ping_id)])
    assert (await conn.expect("ping"))["id"] == ping_id

    await conn.send(source.snapshot())
    await client.wait_synced(timeout=T)
    assert client.book("BTC-USD").seq == source.seq
    assert client.book("BTC-USD").epoch == source.epoch
    assert book_levels(client, "BTC-USD") == source.levels()
    assert client.stats.resyncs == 1

    await conn.send(source.bump())  # and deltas apply again afterwards
    await client.wait_for(lambda: client.book("BTC-USD").seq == source.seq, T)
    assert book_levels(client, "BTC-USD") == source.levels()


async def test_seq_gap_resyncs_once_and_rebuilds_from_the_new_snapshot(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        source.bump()  # lost on the way
        await conn.send(source.bump())
        await _resync_and_recover(client, conn, source, "gaps")
        assert client.stats.checksum_failures == 0


async def test_epoch_change_resyncs(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        old_epoch = source.epoch
        source.new_epoch("e2", seq=0)
        await conn.send(source.bump())  # seq 1 of a new stream: looks "older", is a jump
        await _resync_and_recover(client, conn, source, "gaps")
        assert client.book("BTC-USD").epoch == "e2" != old_epoch


async def test_checksum_mismatch_resyncs(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        good = source.bump()
        await conn.send(dataclasses.replace(good, checksum=(good.checksum + 1) % 2**32))
        await _resync_and_recover(client, conn, source, "checksum_failures")
        assert client.stats.gaps == 0


async def test_snapshot_with_a_bad_checksum_is_refused_and_asked_again(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        bad = source.snapshot()
        await conn.send(dataclasses.replace(bad, checksum=(bad.checksum + 7) % 2**32))
        op = await conn.expect("resync")
        assert op["pair"] == "BTC-USD"
        assert client.stats.checksum_failures == 1
        assert not client.book("BTC-USD").synced
        await conn.send(source.snapshot())
        await client.wait_synced(timeout=T)
        assert book_levels(client, "BTC-USD") == source.levels()


async def test_resync_is_repeated_when_the_snapshot_never_comes(server, source) -> None:
    now = [1_000_000_000_000]  # the client's clock, moved by hand
    client, conn = await open_synced(server, [source], clock=lambda: now[0])
    async with client:
        source.bump()
        await conn.send(source.bump())
        await conn.expect("resync")
        await conn.send(source.bump())  # within resync_retry (5 s): still waiting, no new request
        await client.wait_for(lambda: client.stats.ignored_deltas == 1, T)
        now[0] += 6_000_000_000
        await conn.send(source.bump())  # the snapshot is overdue now: ask again
        await conn.expect("resync")
        assert client.stats.resyncs == 2
        assert conn.pending_ops() == []


@pytest.mark.parametrize("verify", [True, False])
async def test_stale_delta_is_ignored(server, source, verify) -> None:
    client, conn = await open_synced(server, [source], options=fast_options(verify_checksums=verify))
    async with client:
        first = source.bump()
        await conn.send(first)
        await conn.send(source.bump())
        await client.wait_for(lambda: client.book("BTC-USD").seq == source.seq, T)
        before = book_levels(client, "BTC-USD")
        await conn.send(first)  # a duplicate, e.g. a replay overlapping live deltas
        await conn.send(dataclasses.replace(first, seq=first.seq - 50, bids=[["1.00", "9.00000"]]))
        await client.wait_for(lambda: client.stats.stale_deltas == 2, T)
        assert book_levels(client, "BTC-USD") == before == source.levels()
        assert client.book("BTC-USD").synced
        assert client.stats.resyncs == 0
        assert conn.pending_ops() == []


async def test_resync_is_repeated_for_a_quiet_pair(server, source) -> None:
    client, conn = await open_synced(server, [source], options=fast_options(resync_retry=0.05))
    async with client:
        source.bump()
        await conn.send(source.bump())
        await conn.expect("resync")
        # No snapshot and no more deltas: the periodic check asks again by itself.
        op = await conn.expect("resync")
        assert op["pair"] == "BTC-USD"
        await conn.send(source.snapshot())
        await client.wait_synced(timeout=T)
        assert book_levels(client, "BTC-USD") == source.levels()
