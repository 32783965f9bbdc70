"""The overload rule where it meets I/O: the loop-lag monitor that feeds it, and the upgrade it refuses.

The rule itself (pure) is tested in ``tests/unit/gateway/core/test_gateway_overload.py``.
"""

from __future__ import annotations

import asyncio
import time

from gateway.loop_lag import watch_loop_lag


async def test_the_monitor_measures_a_blocked_loop() -> None:
    samples: list[float] = []
    task = asyncio.create_task(watch_loop_lag(lambda lag, now, cpu: samples.append(lag), period_s=0.01))
    try:
        await asyncio.sleep(0.03)
        time.sleep(0.12)  # the loop is held, as a long flush would hold it
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        while not any(lag >= 0.1 for lag in samples):
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
    finally:
        task.cancel()


async def test_an_overloaded_gateway_answers_the_upgrade_503_with_retry_after_and_takes_no_slot() -> None:
    import orjson
    from websockets.datastructures import Headers
    from websockets.http11 import Request

    from gateway.config import GatewayConfig
    from gateway.core.limits import Admission
    from gateway.http_api import HttpApi
    from gateway.hub import Hub

    hub = Hub(GatewayConfig(redis_url="redis://127.0.0.1:1/0"))
    api = HttpApi(hub, Admission(10, 10))
    upgrade = Request("/ws", Headers([("Upgrade", "websocket"), ("Connection", "Upgrade")]))

    class Open:
        def is_closing(self) -> bool:
            return False

    class Peer:  # hashable, like a connection (admission keys on it), and still open
        def __init__(self, port: int) -> None:
            self.remote_address = ("127.0.0.1", port)
            self.transport = Open()

    peer = Peer(40000)
    assert api.admit(peer, upgrade, "") is None  # type: ignore[arg-type]  # admitted while on time
    hub.overload.observe(2.0, now=1.0)  # a loop two seconds late
    response = api.admit(Peer(40001), upgrade, "")  # type: ignore[arg-type]
    assert response is not None and response.status_code == 503
    assert orjson.loads(response.body)["code"] == "overloaded"
    assert 1 <= int(response.headers["Retry-After"]) <= 5
    assert api.admission.total == 1 and hub.counters["refused_overloaded"] == 1
