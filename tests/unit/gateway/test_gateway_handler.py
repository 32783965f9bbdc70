"""gateway.handler: every op gets its documented answer, never an exception.

A real hub (its Redis never contacted) and a session that collects what the handler writes;
the WebSocket server around it (frame sizes, the op rate limit, close codes) is covered by
tests/integration/test_gateway_limits.py.
"""

from __future__ import annotations

import asyncio

import orjson

from gateway.config import GatewayConfig
from gateway.handler import CLOSE_POLICY_VIOLATION, OpLimit, _answer
from gateway.hub import Hub
from tests.unit.gateway.gateway_fakes import FakeSession, live_replica
from tests.unit.gateway.gateway_fakes import make_hub as hub_on_memory

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


async def test_each_op_reaches_its_handler_and_every_answer_goes_to_the_client() -> None:
    hub, _link, stream = hub_on_memory()
    live_replica(hub, stream, at=20, recent_from=16)
    session = FakeSession()
    hub.open_session(session)
    await _answer(hub, session, '{"op":"subscribe","pairs":["ETH-USD"],"id":1}')
    await _answer(hub, session, '{"op":"resync","pair":"ETH-USD","id":2}')
    await _answer(hub, session, '{"op":"ping","id":3}')
    await _answer(hub, session, '{"op":"unsubscribe","pairs":["ETH-USD"],"id":4}')
    await _answer(hub, session, '{"op":"resync","pair":"ETH-USD","id":5}')  # no longer followed
    kinds = [type(m).__name__ for m in session.messages()]
    assert kinds == ["Ack", "Snapshot", "Snapshot", "Pong", "Ack", "ErrorMessage"]
    assert session.messages()[-1].code == "bad_request" and session.pairs == set()
    assert (hub.counters["resyncs"], hub.counters["pings"], hub.counters["unsubscribes"]) == (1, 1, 1)


def test_the_op_budget_answers_rate_limited_once_then_closes_with_1008() -> None:
    hub = make_hub(op_rate=0.001, op_burst=3)  # no token comes back during the test
    session = FakeSession()
    loop = asyncio.new_event_loop()
    limit = OpLimit(hub, session, loop)
    try:
        assert [limit.allow() for _ in range(3)] == [True, True, True]
        assert not limit.allow() and limit.tripped
        assert session.closed_with == (CLOSE_POLICY_VIOLATION, "rate limit exceeded")
        (error,) = session.messages()
        assert error.code == "rate_limited" and "0.001/s (bursts of 3)" in error.message
        assert not limit.allow()  # tripped: refused without a second answer
        assert len(session.messages()) == 1
        assert (hub.counters["errors_rate_limited"], hub.counters["closed_rate_limited"]) == (1, 1)
    finally:
        loop.close()
