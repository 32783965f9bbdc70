"""gateway.binance.session: the per-connection method state machine (stream names: test_binance_streams)."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.binance.session import CLOSE_POLICY, StreamSession, TokenBucket
from gateway.binance.streams import parse_stream_name
from gateway.binance.symbols import SymbolTable

TABLE = SymbolTable(["BTC-USD", "ETH-USD", "SOL-USD"])


def _session(
    *names: str, combined: bool = False, max_streams: int = 1024, rate: float = 5.0
) -> StreamSession:
    specs = [parse_stream_name(n, TABLE) for n in names]
    return StreamSession(
        combined,
        specs,
        lambda name: parse_stream_name(name, TABLE),
        max_streams=max_streams,
        rate=rate,
        now=0.0,
    )


def _send(session: StreamSession, request: object, now: float = 0.0):
    data = request if isinstance(request, str | bytes) else orjson.dumps(request)
    outcome = session.receive(data, now)
    return outcome, (orjson.loads(outcome.reply) if outcome.reply else None)


# --- methods ------------------------------------------------------------------------------


def test_subscribe_list_and_unsubscribe() -> None:
    session = _session("btcusd@depth@100ms")
    outcome, reply = _send(
        session, {"method": "SUBSCRIBE", "params": ["ethusd@depth", "btcusd@depth@100ms"], "id": 1}
    )
    assert reply == {"result": None, "id": 1}
    assert [s.name for s in outcome.added] == ["ethusd@depth"]  # the URL stream is not added twice
    _, reply = _send(session, {"method": "LIST_SUBSCRIPTIONS", "id": 2})
    assert reply == {"result": ["btcusd@depth@100ms", "ethusd@depth"], "id": 2}
    assert session.pairs() == {"BTC-USD", "ETH-USD"}
    outcome, reply = _send(
        session, {"method": "UNSUBSCRIBE", "params": ["btcusd@depth@100ms", "solusd@depth"], "id": 3}
    )
    assert reply == {"result": None, "id": 3} and [s.name for s in outcome.removed] == ["btcusd@depth@100ms"]
    assert list(session.streams) == ["ethusd@depth"]


def test_an_invalid_stream_fails_the_whole_subscribe() -> None:
    session = _session()
    outcome, reply = _send(
        session, {"method": "SUBSCRIBE", "params": ["btcusd@depth", "btcusd@kline_1m"], "id": 4}
    )
    assert reply == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 4}
    assert outcome.added == () and session.streams == {}


@pytest.mark.parametrize(
    ("request_", "code", "fragment", "echo"),
    [
        ("{not json", 3, "Invalid JSON: expected value at line 1 column", None),
        ("[1, 2]", 2, "expected a map", None),
        ({"method": "SUBSCRIBE", "params": []}, 2, "request ID must be an unsigned integer", None),
        ({"method": "SUBSCRIBE", "params": [], "id": 1.5}, 2, "request ID must be", None),
        ({"method": "SUBSCRIBE", "params": [], "id": True}, 2, "request ID must be", None),
        ({"method": "SUBSCRIBE", "params": [], "id": "x" * 37}, 2, "request ID must be", None),
        ({"method": "SUBSCRIBE", "params": [], "id": 2**63}, 2, "request ID must be", None),
        ({"params": [], "id": 7}, 2, "missing field `method`", None),
        ({"method": "PING", "id": 7}, 2, "unknown variant `PING`, expected one of `SUBSCRIBE`", 7),
        ({"method": "SUBSCRIBE", "params": "btcusd@depth", "id": 8}, 2, "expected a sequence", 8),
        ({"method": "LIST_SUBSCRIPTIONS", "params": ["x"], "id": 9}, 2, "too many parameters", 9),
        ({"method": "SET_PROPERTY", "params": ["speed", 1], "id": 10}, 0, "Unknown property", 10),
        ({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 11}, 1, "expected Boolean", 11),
        ({"method": "SET_PROPERTY", "params": [5, True], "id": 12}, 2, "property name must be a string", 12),
        ({"method": "GET_PROPERTY", "params": ["combined", True], "id": 13}, 2, "too many parameters", 13),
    ],
)
def test_bad_requests_get_binance_errors_and_change_nothing(request_, code, fragment, echo) -> None:
    session = _session("btcusd@depth")
    outcome, reply = _send(session, request_)
    assert reply["error"]["code"] == code and fragment in reply["error"]["msg"]
    assert reply["id"] == echo
    assert outcome.close is None and list(session.streams) == ["btcusd@depth"] and not session.combined


@pytest.mark.parametrize(
    "request_id", [None, 0, -5, 2**63 - 1, "abc123", "9f1c2b7e-07a5-4f94-8d5f-789dc3deb097"]
)
def test_accepted_ids_are_echoed(request_id) -> None:
    _, reply = _send(_session(), {"method": "LIST_SUBSCRIPTIONS", "id": request_id})
    assert reply == {"result": [], "id": request_id}


def test_combined_property_can_be_read_and_set() -> None:
    session = _session(combined=False)
    assert _send(session, {"method": "GET_PROPERTY", "params": ["combined"], "id": 1})[1]["result"] is False
    assert (
        _send(session, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 2})[1]["result"] is None
    )
    assert session.combined
    assert _send(session, {"method": "GET_PROPERTY", "params": ["combined"], "id": 3})[1]["result"] is True


def test_at_most_max_streams_per_connection() -> None:
    session = _session("btcusd@depth", max_streams=2)
    _, reply = _send(session, {"method": "SUBSCRIBE", "params": ["ethusd@depth", "solusd@depth"], "id": 1})
    assert reply["error"]["code"] == 2 and "too many streams" in reply["error"]["msg"]
    _, reply = _send(session, {"method": "SUBSCRIBE", "params": ["ethusd@depth"], "id": 2})
    assert reply == {"result": None, "id": 2} and len(session.streams) == 2


def test_more_than_five_messages_a_second_closes_the_connection() -> None:
    session = _session()
    request = {"method": "LIST_SUBSCRIPTIONS", "id": 1}
    for i in range(5):
        assert _send(session, request, now=0.1 * i / 5)[0].close is None
    outcome, reply = _send(session, request, now=0.15)
    assert outcome.close == (CLOSE_POLICY, "Too many requests") and reply is None
    assert _send(_session(), request, now=0.0)[0].close is None


def test_the_bucket_refills_at_the_rate() -> None:
    bucket = TokenBucket(5.0, 5.0, now=0.0)
    assert all(bucket.take(0.0) for _ in range(5)) and not bucket.take(0.0)
    assert bucket.take(0.2) and not bucket.take(0.2)  # one token back after 1/5 s
    assert sum(bucket.take(10.0) for _ in range(10)) == 5  # never more than the burst


@pytest.mark.parametrize("method", ["SUBSCRIBE", "UNSUBSCRIBE"])
@pytest.mark.parametrize("params", [[["x"]], [{"a": 1}], ["btcusd@depth", ["x"]], [1], [None], [True]])
def test_ill_typed_stream_names_get_code_2_and_change_nothing(method, params) -> None:
    session = _session("btcusd@depth")
    outcome, reply = _send(session, {"method": method, "params": params, "id": 1})
    assert reply == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 1}
    assert outcome.added == outcome.removed == () and outcome.close is None
    assert list(session.streams) == ["btcusd@depth"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(
    method=st.sampled_from(["SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY"])
    | _json,
    params=_json,
    request_id=st.integers(-5, 5) | st.none() | _json,  # mostly valid ids, so the methods run
    extra=st.dictionaries(st.sampled_from(["method", "params", "id", "x"]), _json, max_size=2),
)
def test_any_request_gets_a_binance_answer_never_an_exception(method, params, request_id, extra) -> None:
    session = _session("btcusd@depth", rate=1e9)
    request = {"method": method, "params": params, "id": request_id, **extra}
    outcome = session.receive(json.dumps(request), 0)  # json: integers beyond 64 bits too
    reply = orjson.loads(outcome.reply)
    assert outcome.close is None and set(reply) in ({"result", "id"}, {"error", "id"})
    if "error" in reply:  # a foreseen refusal, not the catch-all for inputs nobody thought of
        assert reply["error"]["code"] in (0, 1, 2, 3) and reply["error"]["msg"] != "Invalid request"
        assert outcome.added == outcome.removed == ()
