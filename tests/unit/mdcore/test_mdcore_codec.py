"""codec: server messages and client ops on the wire, framing, and every client error code."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdcore.codec import (
    MAX_PAIRS_PER_REQUEST,
    decode_client_op,
    decode_delta,
    decode_server_frame,
    decode_snapshot,
    encode_ack,
    encode_client_op,
    encode_delta,
    encode_error,
    encode_pong,
    encode_snapshot,
    pack_frame,
)
from mdcore.errors import ProtocolError
from mdcore.messages import (
    Ack,
    Delta,
    ErrorMessage,
    Ping,
    Pong,
    Resync,
    Snapshot,
    StreamPosition,
    Subscribe,
    UnknownMessage,
    Unsubscribe,
)

SNAP = Snapshot(
    "BTC-USD", "e7", 41, 1_700_000_000_000_000_000,
    [["64000.10", "1.25000"], ["63999.90", "0.50000"]], [["64000.20", "0.75000"]], 123456,
)  # fmt: skip
DELTA = Delta(
    "BTC-USD", "e7", 42, 1_700_000_000_100_000_000, 1_700_000_000_012_000_000,
    [["64000.10", "0"]], [["64000.20", "1.00000"], ["64000.30", "0.20000"]], 4294967295,
)  # fmt: skip


# --- server -> client --------------------------------------------------------------


def test_delta_bytes_are_exact() -> None:
    assert encode_delta(DELTA) == (
        b'{"type":"delta","pair":"BTC-USD","epoch":"e7","seq":42,"ts":1700000000100000000,'
        b'"xts":1700000000012000000,"bids":[["64000.10","0"]],'
        b'"asks":[["64000.20","1.00000"],["64000.30","0.20000"]],"checksum":4294967295}'
    )


def test_delta_and_snapshot_key_order() -> None:
    delta_keys = list(json.loads(encode_delta(DELTA)))
    assert delta_keys == ["type", "pair", "epoch", "seq", "ts", "xts", "bids", "asks", "checksum"]
    snap_keys = list(json.loads(encode_snapshot(SNAP)))
    assert snap_keys == ["type", "pair", "epoch", "seq", "ts", "bids", "asks", "checksum"]


def test_snapshot_and_delta_round_trip() -> None:
    assert decode_snapshot(encode_snapshot(SNAP)) == SNAP
    assert decode_delta(encode_delta(DELTA)) == DELTA
    assert decode_delta(encode_delta(DELTA).decode()) == DELTA  # str works as well as bytes


def test_tuples_encode_like_lists() -> None:
    as_tuples = Delta("BTC-USD", "e7", 42, 1, 1, (("64000.10", "0"),), (), 0)
    as_lists = Delta("BTC-USD", "e7", 42, 1, 1, [["64000.10", "0"]], [], 0)
    assert encode_delta(as_tuples) == encode_delta(as_lists)


def test_decode_delta_and_snapshot_refuse_the_other_kind() -> None:
    with pytest.raises(ValueError):
        decode_delta(encode_snapshot(SNAP))
    with pytest.raises(ValueError):
        decode_snapshot(encode_delta(DELTA))


def test_levels_must_be_a_list() -> None:
    body = orjson.loads(encode_delta(DELTA))
    body["bids"] = "64000.10"
    with pytest.raises(ValueError, match="bids"):
        decode_delta(orjson.dumps(body))


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        (
            encode_ack(Ack("subscribed", ("BTC-USD", "ETH-USD"), 7)),
            Ack("subscribed", ("BTC-USD", "ETH-USD"), 7),
        ),
        (encode_ack(Ack("unsubscribed", ("BTC-USD",), "x")), Ack("unsubscribed", ("BTC-USD",), "x")),
        (encode_ack(Ack("subscribed", ("BTC-USD",), 1, True)), Ack("subscribed", ("BTC-USD",), 1, True)),
        (encode_pong(Pong({"n": 1})), Pong({"n": 1})),
        (encode_pong(Pong()), Pong()),
        (encode_error("unknown_pair", "no such pair", 3), ErrorMessage("unknown_pair", "no such pair", 3)),
        (encode_snapshot(SNAP), SNAP),
        (encode_delta(DELTA), DELTA),
    ],
)
def test_every_server_message_round_trips(encoded, message) -> None:
    assert decode_server_frame(encoded) == [message]


def test_ack_carries_recovered_only_when_set() -> None:
    assert orjson.loads(encode_ack(Ack("subscribed", ("BTC-USD",), 1))) == {
        "type": "subscribed",
        "pairs": ["BTC-USD"],
        "id": 1,
    }
    assert orjson.loads(encode_ack(Ack("subscribed", ("BTC-USD",), 1, False)))["recovered"] is False


def test_error_and_pong_shapes() -> None:
    assert encode_error("bad_json", "the frame is not valid JSON") == (
        b'{"type":"error","code":"bad_json","message":"the frame is not valid JSON","id":null}'
    )
    assert encode_pong(Pong(5)) == b'{"type":"pong","id":5}'


def test_unknown_message_types_are_kept() -> None:
    (message,) = decode_server_frame(b'{"type":"heartbeat","n":1}')
    assert message == UnknownMessage({"type": "heartbeat", "n": 1})


def test_pack_frame() -> None:
    one = encode_delta(DELTA)
    assert pack_frame([one]) is one  # a single message is sent as it is, no array
    other = encode_delta(Delta("ETH-USD", "e1", 9, 1, 1, [], [["3000.00", "1.0000"]], 5))
    frame = pack_frame([one, other, encode_pong(Pong(1))])
    assert frame == b"[" + one + b"," + other + b',{"type":"pong","id":1}]'
    assert isinstance(json.loads(frame), list)
    messages = decode_server_frame(frame)
    assert [type(m) for m in messages] == [Delta, Delta, Pong]
    assert messages[0] == DELTA and messages[1].pair == "ETH-USD"


# --- client -> server --------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [
        Subscribe(("BTC-USD", "ETH-USD"), 1),
        Subscribe(("BTC-USD",), "req-1", {"BTC-USD": StreamPosition("e7", 41)}),
        Subscribe(("BTC-USD",), None),
        Unsubscribe(("ETH-USD",), 2),
        Resync("BTC-USD", 3),
        Ping(4),
        Ping(),
    ],
)
def test_client_ops_round_trip(op) -> None:
    text = encode_client_op(op)
    assert isinstance(text, str)
    assert decode_client_op(text) == op
    assert decode_client_op(text.encode()) == op


def test_client_op_shapes() -> None:
    assert orjson.loads(encode_client_op(Subscribe(("BTC-USD",), 1))) == {
        "op": "subscribe",
        "pairs": ["BTC-USD"],
        "id": 1,
    }
    assert orjson.loads(encode_client_op(Resync("BTC-USD", 2))) == {
        "op": "resync",
        "pair": "BTC-USD",
        "id": 2,
    }
    assert orjson.loads(encode_client_op(Ping(3))) == {"op": "ping", "id": 3}


def test_subscribe_drops_repeated_pairs_keeping_order() -> None:
    op = decode_client_op('{"op":"subscribe","pairs":["ETH-USD","BTC-USD","ETH-USD"]}')
    assert op == Subscribe(("ETH-USD", "BTC-USD"), None)


def test_since_parsing() -> None:
    op = decode_client_op(
        '{"op":"subscribe","pairs":["BTC-USD","ETH-USD"],"id":1,'
        '"since":{"BTC-USD":{"epoch":"e7","seq":41},"ETH-USD":{"epoch":"e1","seq":0}}}'
    )
    assert isinstance(op, Subscribe)
    assert op.since == {"BTC-USD": StreamPosition("e7", 41), "ETH-USD": StreamPosition("e1", 0)}
    assert decode_client_op('{"op":"subscribe","pairs":["BTC-USD"],"since":null}').since == {}


def test_unknown_fields_are_ignored() -> None:
    assert decode_client_op('{"op":"ping","id":1,"extra":[1,2]}') == Ping(1)


def expect_error(frame, code, request_id=None) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_client_op(frame)
    assert info.value.code == code
    assert info.value.request_id == request_id
    assert info.value.message
    return info.value


@pytest.mark.parametrize(
    "frame", ["", "{", "[1,", "not json", "{'op': 'ping'}", b"\xff\xfe", '{"op":"ping"} x']
)
def test_bad_json(frame) -> None:
    expect_error(frame, "bad_json")


@pytest.mark.parametrize("frame", ["[]", '[{"op":"ping"}]', '"ping"', "1", "null", "true"])
def test_bad_request_not_an_object(frame) -> None:
    expect_error(frame, "bad_request")


PAIRS_PROBLEMS = [
    '{"op":"subscribe","id":9}',
    '{"op":"subscribe","pairs":[],"id":9}',
    '{"op":"subscribe","pairs":"BTC-USD","id":9}',
    '{"op":"subscribe","pairs":["BTC-USD",1],"id":9}',
    '{"op":"subscribe","pairs":[null],"id":9}',
    '{"op":"unsubscribe","pairs":{},"id":9}',
    '{"op":"unsubscribe","id":9}',
]


@pytest.mark.parametrize("frame", PAIRS_PROBLEMS)
def test_bad_request_pairs(frame) -> None:
    error = expect_error(frame, "bad_request", 9)
    assert "pairs" in error.message


def test_bad_request_too_many_pairs() -> None:
    pairs = [f"SYN{i:04d}-USD" for i in range(MAX_PAIRS_PER_REQUEST + 1)]
    frame = orjson.dumps({"op": "subscribe", "pairs": pairs, "id": "big"})
    error = expect_error(frame, "bad_request", "big")
    assert str(MAX_PAIRS_PER_REQUEST) in error.message
    ok = orjson.dumps({"op": "subscribe", "pairs": pairs[:MAX_PAIRS_PER_REQUEST]})
    assert len(decode_client_op(ok).pairs) == MAX_PAIRS_PER_REQUEST


@pytest.mark.parametrize(
    "since",
    [
        '"e7"',
        "[]",
        '{"BTC-USD":41}',
        '{"BTC-USD":{"seq":41}}',
        '{"BTC-USD":{"epoch":"e7"}}',
        '{"BTC-USD":{"epoch":7,"seq":41}}',
        '{"BTC-USD":{"epoch":"e7","seq":-1}}',
        '{"BTC-USD":{"epoch":"e7","seq":41.0}}',
        '{"BTC-USD":{"epoch":"e7","seq":"41"}}',
        '{"BTC-USD":{"epoch":"e7","seq":true}}',
    ],
)
def test_bad_request_since(since) -> None:
    error = expect_error(f'{{"op":"subscribe","pairs":["BTC-USD"],"id":5,"since":{since}}}', "bad_request", 5)
    assert "since" in error.message


@pytest.mark.parametrize("frame", ['{"op":"resync","id":2}', '{"op":"resync","pair":["BTC-USD"],"id":2}'])
def test_bad_request_resync(frame) -> None:
    error = expect_error(frame, "bad_request", 2)
    assert "pair" in error.message


@pytest.mark.parametrize(
    "frame", ['{"id":3}', '{"op":null,"id":3}', '{"op":1,"id":3}', '{"op":["ping"],"id":3}']
)
def test_bad_request_op_not_a_string(frame) -> None:
    expect_error(frame, "bad_request", 3)


@pytest.mark.parametrize("op", ["dance", "Subscribe", "PING", ""])
def test_unknown_op(op) -> None:
    error = expect_error(orjson.dumps({"op": op, "id": [1]}), "unknown_op", [1])
    assert repr(op) in error.message


def test_unknown_op_message_is_bounded() -> None:
    error = expect_error(orjson.dumps({"op": "x" * 10_000}), "unknown_op")
    assert len(error.message) < 100


# --- hostile input: every frame gets an answer that can be encoded ----------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("field", ["id", "pairs", "pair", "since", "op"])
def test_deep_nesting_anywhere_is_a_protocol_error_or_an_op_never_an_unencodable_answer(field) -> None:
    for op in ("ping", "subscribe", "resync"):
        frame = f'{{"op":"{op}","pairs":["BTC-USD"],"pair":"BTC-USD","{field}":{nested(254)}}}'
        assert_answerable(frame)
    deep_id = expect_error(f'{{"op":"ping","id":{nested(33)}}}', "bad_request", None)
    assert "32" in deep_id.message
    assert decode_client_op(f'{{"op":"ping","id":{nested(32)}}}') == Ping(orjson.loads(nested(32)))


def assert_answerable(frame: str | bytes) -> None:
    """The frame decodes to an op or a ProtocolError, and the gateway's answer to it encodes."""
    try:
        op = decode_client_op(frame)
    except ProtocolError as exc:
        encode_error(exc.code, exc.message, exc.request_id)
        return
    encode_pong(Pong(op.id))
    encode_error("bad_request", "x", op.id)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(
    op=st.sampled_from(["subscribe", "unsubscribe", "resync", "ping", "x"]) | json_values,
    fields=st.dictionaries(st.sampled_from(["id", "pairs", "pair", "since"]), json_values),
)
def test_any_json_request_is_answered(op, fields) -> None:
    assert_answerable(orjson.dumps({"op": op, **fields}))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64))
def test_any_bytes_are_answered(frame) -> None:
    assert_answerable(frame)


@pytest.mark.parametrize(
    "data", [b"[]", b"null", b"7", b"\xff", b'{"type":"delta"}', b'{"type":"snapshot","pair":1}', b"[1]"]
)
def test_malformed_server_bytes_raise_decode_error_only(data) -> None:
    from mdcore.errors import DecodeError

    for decode in (decode_delta, decode_snapshot):
        with pytest.raises(DecodeError):
            decode(data)
    if data not in (b"[]",):  # an empty array is a valid (empty) frame
        with pytest.raises(DecodeError):
            decode_server_frame(data)
