"""Binance paths are gated like native ones, on the gateway's port and on a port of their own.

A real gateway with tokens, an Origin allowlist, 2 connections per address and 3 per
process: REST depth needs the token (as ``/snapshot`` does), and a Binance stream upgrade
is refused without it, from a foreign Origin, past the per-address limit (429) and past
the per-process limit (503). Connections from 127.0.0.2 stand for a second client address;
the limits count native and Binance connections together, whichever port they came in on.
"""

from __future__ import annotations

import http.client
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bookcast.bench.fanout_publisher import SyntheticPublisher
from bookcast.loopback import free_port
from bookcast.processes import TierProcess
from tests.integration.gateway_helpers import PAIRS, counters, gateway_env
from tests.integration.stack_helpers import unique, wait_until_async

pytestmark = pytest.mark.integration

TOKEN = "s3cret"
GOOD_ORIGIN = "https://good.example"
OTHER_ADDRESS = "127.0.0.2"  # loopback too: a second client address on this machine


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


async def _refused(url: str, **kwargs: object) -> int:
    with pytest.raises(InvalidStatus) as refused:
        await connect(url, proxy=None, **kwargs)
    return refused.value.response.status_code


@pytest.mark.parametrize("own_port", [False, True], ids=["shared-port", "own-port"])
async def test_binance_rest_and_streams_pass_the_gateway_gatekeeping(infra, own_port) -> None:
    prefix = unique("gwbngate")
    publisher = SyntheticPublisher(infra.redis_url, prefix, PAIRS, seed=7)
    publisher.window()
    env = gateway_env(
        infra.redis_url, prefix,
        tokens=TOKEN, origins=GOOD_ORIGIN, max_connections_per_ip="2", max_connections="3",
    )  # fmt: skip
    if own_port:
        env.update({"BOOKCAST_BINANCE_PORT": str(free_port()), "BOOKCAST_BINANCE_PREFIX": ""})
    gateway = TierProcess("gateway", "gateway", args=["--workers", "1"], env=env, listens=True).start()
    port = int(env["BOOKCAST_BINANCE_PORT"]) if own_port else gateway.port
    base = "" if own_port else "/binance"
    held = []
    try:
        depth = f"{base}/api/v3/depth?symbol=BTCUSD&limit=5"
        status, body = _get(port, depth)
        assert (status, body["code"]) == (401, -2015)
        assert _get(port, f"{depth}&token=wrong")[0] == 401
        status, body = _get(port, f"{depth}&token={TOKEN}")
        assert status == 200 and body["lastUpdateId"] > 0 and len(body["bids"]) == 5
        assert _get(port, depth, {"X-MBX-APIKEY": TOKEN})[0] == 200
        assert _get(port, depth, {"Authorization": f"Bearer {TOKEN}"})[0] == 200

        stream = f"ws://127.0.0.1:{port}{base}/ws/btcusd@depth@100ms"
        assert await _refused(stream) == 401
        assert await _refused(f"{stream}?token={TOKEN}", origin="https://evil.example") == 403
        held += [await connect(f"{stream}?token={TOKEN}", proxy=None, origin=GOOD_ORIGIN) for _ in range(2)]
        assert await _refused(f"{stream}?token={TOKEN}") == 429  # a third from this address
        native = f"{gateway.ws_url}?token={TOKEN}"
        held.append(await connect(native, proxy=None, local_addr=(OTHER_ADDRESS, 0)))  # the process's third
        assert await _refused(f"{stream}?token={TOKEN}", local_addr=(OTHER_ADDRESS, 0)) == 503
        await held.pop(0).close()  # a Binance connection ends: its slot is free again

        async def reconnected() -> bool:  # once the server has seen the TCP connection end
            try:
                held.append(await connect(f"{stream}?token={TOKEN}", proxy=None))
            except InvalidStatus:
                return False
            return True

        await wait_until_async(reconnected, what="the slot of the closed connection to be free")
        c = counters(gateway)
        assert c["refused_unauthorized"] == 1 and c["refused_origin"] == 1
        assert c["refused_ip_limit"] >= 1 and c["refused_process_limit"] >= 1
    finally:
        for ws in held:
            await ws.close()
        gateway.stop()
        publisher.close()
