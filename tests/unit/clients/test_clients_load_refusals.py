"""Load connections refused for load (503/429): counted apart, retried after Retry-After, then in."""

from __future__ import annotations

import asyncio
import threading
import time

import orjson
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from clients.load.worker import ConnSpec, Worker, WorkerPlan
from mdcore.codec import encode_snapshot
from tests.unit.clients.scripted_server import SourceBook, T


class RefusingGateway:
    """Answers the first ``refuse`` handshakes with ``status`` (and Retry-After), then serves snapshots."""

    def __init__(self, status: int, refuse: int, retry_after: str | None, sized: bool = True) -> None:
        self.status, self.left, self.retry_after, self.sized = status, refuse, retry_after, sized
        self.handshakes: list[tuple[float, int]] = []
        self.subscribes: list[dict] = []

    def process_request(self, connection, request):
        if self.left > 0:
            self.left -= 1
            self.handshakes.append((time.monotonic(), self.status))
            body = b'{"type":"error","code":"overloaded"}'
            headers = [("Retry-After", self.retry_after)] if self.retry_after else []
            if self.sized:  # as the gateway answers; without it the body (and the answer) ends at EOF
                headers.append(("Content-Length", str(len(body))))
            return Response(self.status, "busy", Headers(headers), body)
        self.handshakes.append((time.monotonic(), 101))
        return None

    async def handler(self, ws) -> None:
        source = SourceBook.with_depth()
        async for data in ws:
            self.subscribes.append(orjson.loads(data))
            await ws.send(encode_snapshot(source.snapshot()).decode())


async def run_worker(url: str, connections: int, stop_when) -> dict:
    specs = tuple(ConnSpec(i, url, ("BTC-USD",), False) for i in range(connections))
    worker = Worker(WorkerPlan(0, specs, 30.0, interval=0.2, open_timeout=T, open_concurrency=10, ramp=0.0))
    stop = threading.Event()
    task = asyncio.create_task(worker.run(stop, lambda _: None, time.monotonic()))
    async with asyncio.timeout(3 * T):
        while not stop_when(worker):
            await asyncio.sleep(0.01)
    stop.set()
    return await task


async def test_a_503_is_a_refusal_retried_no_sooner_than_retry_after() -> None:
    gateway = RefusingGateway(503, refuse=2, retry_after="0.3")
    async with serve(gateway.handler, "127.0.0.1", 0, process_request=gateway.process_request) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
        final = await run_worker(url, 1, lambda w: w.synced_count() == 1)
    c = final["counters"]
    assert (c["refusals"], c["refusals_503"], c["refusals_429"], c["connect_failures"]) == (2, 2, 0, 0)
    assert (c["connects"], c["refused_then_connected"], final["synced_at_end"]) == (1, 1, 1)
    (t0, s0), (t1, s1), (t2, s2) = gateway.handshakes
    assert (s0, s1, s2) == (503, 503, 101)
    assert t1 - t0 >= 0.3 and t2 - t1 >= 0.3  # Retry-After is a floor
    assert t1 - t0 <= 0.3 * 1.5 + 0.2  # jitter above it, bounded


async def test_a_429_without_retry_after_falls_back_to_the_backoff() -> None:
    gateway = RefusingGateway(429, refuse=1, retry_after=None, sized=False)
    async with serve(gateway.handler, "127.0.0.1", 0, process_request=gateway.process_request) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
        final = await run_worker(url, 2, lambda w: w.synced_count() == 2)
    c = final["counters"]
    assert (c["refusals"], c["refusals_429"], c["refused_then_connected"], c["connects"]) == (1, 1, 1, 2)


async def test_other_handshake_errors_stay_connect_failures() -> None:
    gateway = RefusingGateway(401, refuse=1, retry_after=None)
    async with serve(gateway.handler, "127.0.0.1", 0, process_request=gateway.process_request) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
        final = await run_worker(url, 1, lambda w: w.synced_count() == 1)
    c = final["counters"]
    assert (c["refusals"], c["connect_failures"], c["refused_then_connected"]) == (0, 1, 0)
