"""gateway.handler: every op gets its documented answer, never an exception.

A real hub (its Redis never contacted) and a session that collects what the handler writes;
the WebSocket server around it (frame sizes, the op rate limit, close codes) is covered by
tests/integration/test_gateway_limits.py.
"""

from __future__ import annotations

import orjson

from gateway.config import GatewayConfig
from gateway.handler import _answer
from gateway.hub import Hub

DEEP_ID = '{"op":"ping","id":' + "[" * 254 + "]" * 254 + "}"


class Session:
    """Collects what the handler writes to a client."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.pairs: set[str] = set()
        self.lagging = False
        self.open = True

    def send(self, payload: bytes) -> bool:
        self.sent.append(orjson.loads(payload))
        return True


def make_hub(**settings: object) -> Hub:
    return Hub(GatewayConfig(redis_url="redis://127.0.0.1:1/0", pairs=("BTC-USD", "ETH-USD"), **settings))


async def test_a_deeply_nested_id_is_a_bad_request_answered_without_it() -> None:
    hub, session = make_hub(), Session()
    await _answer(hub, session, DEEP_ID)  # used to raise in orjson.dumps: close 1011
    message = "'id' may nest at most 32 levels deep"
    assert session.sent == [{"type": "error", "code": "bad_request", "message": message, "id": None}]
    ok = '{"op":"ping","id":' + "[" * 32 + "]" * 32 + "}"
    await _answer(hub, session, ok)
    assert session.sent[-1]["type"] == "pong"
    assert hub.counters["errors_bad_request"] == 1


async def test_a_bug_behind_an_op_is_answered_internal_error_and_the_connection_kept() -> None:
    hub, session = make_hub(), Session()

    async def broken() -> set[str]:
        raise RuntimeError("a bug")

    hub.offered_pairs = broken  # type: ignore[method-assign]
    await _answer(hub, session, '{"op":"subscribe","pairs":["BTC-USD"],"id":5}')
    assert [m["code"] for m in session.sent] == ["internal_error"]
    assert hub.counters["errors_internal_error"] == 1
    await _answer(hub, session, '{"op":"ping","id":6}')
    assert session.sent[-1] == {"type": "pong", "id": 6}
