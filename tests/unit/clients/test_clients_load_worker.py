"""A load worker's connections against a scripted gateway on loopback: real WebSocket frames."""

from __future__ import annotations

import asyncio
import threading
import time

from clients.load.worker import ConnSpec, Worker, WorkerPlan
from tests.unit.clients.scripted_server import SourceBook, T, encode


def plan(url, connections=2, duration=30.0, pairs=("BTC-USD",), verify=True):
    specs = tuple(ConnSpec(i, url, pairs, verify) for i in range(connections))
    return WorkerPlan(0, specs, duration, interval=0.2, open_timeout=T, open_concurrency=10, ramp=0.0)


async def start(worker):
    stop = threading.Event()
    reports = []
    task = asyncio.create_task(worker.run(stop, reports.append, time.monotonic()))
    return stop, reports, task


async def until(predicate, what):
    async with asyncio.timeout(T):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_connections_subscribe_check_frames_and_close_cleanly(server) -> None:
    worker = Worker(plan(server.url, connections=2, pairs=("BTC-USD", "ETH-USD")))
    stop, reports, task = await start(worker)
    conns = [await server.accept(), await server.accept()]
    books = {p: SourceBook.with_depth(p) for p in ("BTC-USD", "ETH-USD")}
    for conn in conns:
        op = await conn.expect("subscribe")
        assert op["pairs"] == ["BTC-USD", "ETH-USD"]
        await conn.subscribed(op)
        await conn.send(*(b.snapshot() for b in books.values()))  # one array frame
    for _ in range(3):
        deltas = [books["BTC-USD"].bump(), books["ETH-USD"].bump()]
        for conn in conns:
            await conn.send(*deltas)
    # A message split over frames is joined before it is checked.
    fragmented = encode(books["BTC-USD"].bump()).decode()
    for conn in conns:
        await conn.ws.send([fragmented[:40], fragmented[40:90], fragmented[90:]])
    await until(lambda: worker.counters.deltas == 14, "every delta")
    await until(lambda: reports, "a progress report")
    stop.set()
    final = await task
    counters = final["counters"]
    assert (counters["snapshots"], counters["deltas"], counters["gaps"], counters["resyncs"]) == (4, 14, 0, 0)
    assert (counters["verified"], counters["checksum_failures"]) == (18, 0)
    assert (counters["connects"], counters["disconnects"], counters["acks"]) == (2, 0, 2)
    assert final["connected_at_end"] == 2
    for conn in conns:  # closed with a clean 1000
        await asyncio.wait_for(conn.closed.wait(), T)
        assert conn.ws.close_code == 1000
    assert "counters" in reports[0] and "latencies" in reports[0]


async def test_a_gap_sends_a_resync_on_that_connection(server) -> None:
    worker = Worker(plan(server.url, connections=1))
    stop, _, task = await start(worker)
    conn = await server.accept()
    await conn.subscribed(await conn.expect("subscribe"))
    source = SourceBook.with_depth()
    await conn.send(source.snapshot())
    source.bump()  # lost
    await conn.send(source.bump())
    assert (await conn.expect("resync"))["pair"] == "BTC-USD"
    await conn.send(source.snapshot())
    await conn.send(source.bump())
    await until(lambda: worker.counters.deltas == 1, "the delta after the new snapshot")
    stop.set()
    counters = (await task)["counters"]
    assert (counters["gaps"], counters["resyncs"], counters["snapshots"]) == (1, 1, 2)


async def test_a_dropped_connection_is_counted_and_reopened(server) -> None:
    worker = Worker(plan(server.url, connections=1))
    stop, _, task = await start(worker)
    first = await server.accept()
    await first.expect("subscribe")
    first.drop()  # no closing handshake: a crash
    second = await server.accept()
    assert (await second.expect("subscribe"))["pairs"] == ["BTC-USD"]
    source = SourceBook.with_depth()
    await second.send(source.snapshot())
    await until(lambda: worker.counters.snapshots == 1, "the snapshot on the new connection")
    stop.set()
    counters = (await task)["counters"]
    assert (counters["connects"], counters["disconnects"]) == (2, 1)


async def test_an_unreachable_gateway_counts_failures_and_the_run_still_ends() -> None:
    worker = Worker(plan("ws://127.0.0.1:9/ws", connections=2, duration=0.5))
    _, _, task = await start(worker)
    final = await asyncio.wait_for(task, T)
    assert final["counters"]["connect_failures"] >= 2
    assert final["counters"]["connects"] == 0
    assert final["elapsed"] >= 0.5


async def test_a_connection_can_come_from_a_chosen_local_address(server) -> None:
    specs = (ConnSpec(0, server.url, ("BTC-USD",), False, source="127.0.0.2"),)
    worker = Worker(WorkerPlan(0, specs, 30.0, interval=1.0, open_timeout=T, open_concurrency=1, ramp=0.0))
    stop, _, task = await start(worker)
    conn = await server.accept()
    await conn.expect("subscribe")
    assert conn.ws.remote_address[0] == "127.0.0.2"
    stop.set()
    assert (await task)["counters"]["connects"] == 1


async def test_a_dropped_connection_comes_back_with_since_and_counts_its_resync(server) -> None:
    worker = Worker(plan(server.url, connections=1, pairs=("BTC-USD", "ETH-USD"), verify=True))
    stop, reports, task = await start(worker)
    books = {p: SourceBook.with_depth(p) for p in ("BTC-USD", "ETH-USD")}
    first = await server.accept()
    await first.subscribed(await first.expect("subscribe"))
    await first.send(*(b.snapshot() for b in books.values()))
    await first.send(*(b.bump() for b in books.values()))
    await until(lambda: worker.synced_count() == 1 and worker.counters.deltas == 2, "synced")
    first.drop()
    missed = [b.bump() for b in books.values()]
    second = await server.accept()
    op = await second.expect("subscribe")
    assert op["since"] == {p: {"epoch": "e1", "seq": 101} for p in books}
    await second.subscribed(op, recovered=True)
    await second.send(*missed)
    await until(lambda: worker.counters.resynced == 1, "synced again")
    await until(lambda: any(r["synced"] == 1 and r["synced_ns"] for r in reports[1:]), "a report")
    stop.set()
    final = await task
    c = final["counters"]
    assert (c["disconnects"], c["since_subscribes"], c["recovered_answers"], c["snapshots"]) == (1, 1, 1, 2)
    assert (c["deltas"], c["gaps"], c["checksum_failures"]) == (4, 0, 0)
    assert final["synced_at_end"] == 1 and final["groups"] == {
        "spread": {"connections": 1, "frames": 5, "deltas": 4, "open": 0}  # acks, snapshots, deltas, replay
    }
