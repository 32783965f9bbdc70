"""gateway.core.resp: the incremental RESP2 parser and the command encoder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.resp import RespError, RespParser, RespProtocolError, Status, encode_command


def test_resp_messages_arrive_whole_however_the_bytes_are_split() -> None:
    wire = (
        b"*3\r\n$9\r\nsubscribe\r\n$5\r\nchan1\r\n:1\r\n"
        b"*3\r\n$7\r\nmessage\r\n$5\r\nchan1\r\n$12\r\nhello\r\nworld\r\n"
        b"*2\r\n$4\r\npong\r\n$0\r\n\r\n+OK\r\n-ERR nope\r\n$-1\r\n"
    )
    expected = [
        [b"subscribe", b"chan1", 1],
        [b"message", b"chan1", b"hello\r\nworld"],  # a bulk string may contain CRLF
        [b"pong", b""],
        "OK",
        "ERR nope",
        None,
    ]
    for step in (1, 2, 7, len(wire)):
        parser = RespParser()
        got: list[object] = []
        for i in range(0, len(wire), step):
            got += parser.feed(wire[i : i + step])
        assert [str(v) if isinstance(v, RespError) else v for v in got] == expected
        assert isinstance(got[3], Status) and isinstance(got[4], RespError)


def test_resp_garbage_is_a_protocol_error() -> None:
    with pytest.raises(RespProtocolError):
        RespParser().feed(b"?what\r\n")
    with pytest.raises(RespProtocolError):
        RespParser().feed(b"$abc\r\n")


def test_resp_command_encoding() -> None:
    assert encode_command(["SUBSCRIBE", b"a:b"]) == b"*2\r\n$9\r\nSUBSCRIBE\r\n$3\r\na:b\r\n"
    assert RespParser().feed(encode_command(["PING"])) == [[b"PING"]]


# --- partial input ----------------------------------------------------------------------


BULK = b"$5\r\nhello\r\n"
NESTED = b"*2\r\n*1\r\n:1\r\n$1\r\na\r\n"  # [[1], b"a"]


@pytest.mark.parametrize(
    ("whole", "cut"),
    [
        (BULK, 1),  # a type byte only
        (BULK, 2),  # a header without its CRLF
        (BULK, 3),  # half the CRLF
        (BULK, 7),  # a bulk string cut short
        (BULK, 9),  # its payload whole, its CRLF not yet
        (BULK, 10),  # half that CRLF
        (NESTED, 4),  # an array with none of its items
        (NESTED, 8),  # a nested array's header only
        (NESTED, 12),  # the nested array whole, the outer one not
        (NESTED, 16),  # the last item's header, not its payload
        (NESTED, 18),  # its payload, not its CRLF
        (b":12\r\n", 3),
        (b"+OK\r\n", 3),
    ],
)
def test_a_partial_reply_waits_and_then_completes(whole: bytes, cut: int) -> None:
    parser = RespParser()
    assert parser.feed(whole[:cut]) == []
    assert parser.feed(b"") == []  # nothing new: still waiting, nothing lost
    assert parser.feed(whole[cut:]) == RespParser().feed(whole)
    assert parser.feed(b":7\r\n") == [7]  # the parser is at the next reply's start


def test_the_reference_replies_of_the_partial_cases() -> None:
    assert RespParser().feed(BULK + NESTED) == [b"hello", [[1], b"a"]]


def test_several_replies_in_one_read_and_a_partial_one_after_them() -> None:
    parser = RespParser()
    assert parser.feed(b":1\r\n:2\r\n$3\r\nab") == [1, 2]
    assert parser.feed(b"c\r\n") == [b"abc"]


def test_a_bulk_string_may_hold_any_bytes_including_crlf_and_type_bytes() -> None:
    payload = b"\r\n*1\r\n$-1\r\n\x00\xff"
    assert RespParser().feed(b"$%d\r\n%s\r\n" % (len(payload), payload)) == [payload]


# --- nested arrays and the other types --------------------------------------------------


def test_nested_arrays_nulls_and_pushes() -> None:
    wire = (
        b"*3\r\n*2\r\n:1\r\n*1\r\n$1\r\nx\r\n*0\r\n$-1\r\n"  # [[1, [b"x"]], [], None]
        b"*-1\r\n"  # a null array
        b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nd\r\n"  # a RESP3 push parses as an array
        b":-42\r\n"
    )
    assert RespParser().feed(wire) == [[[1, [b"x"]], [], None], None, [b"message", b"c", b"d"], -42]


def test_status_and_error_replies_keep_their_text() -> None:
    status, error = RespParser().feed(b"+PONG\r\n-WRONGTYPE Operation against a key\r\n")
    assert isinstance(status, Status) and status == "PONG"
    assert isinstance(error, RespError) and str(error) == "WRONGTYPE Operation against a key"


# --- what is refused --------------------------------------------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        b"*x\r\n",  # an array count that is not a number
        b":\r\n",  # an empty integer
        b"$%d\r\n" % (512 * 1024 * 1024 + 1),  # longer than Redis allows a string to be
        b"*1\r\n!oops\r\n",  # a bad type byte inside an array
    ],
)
def test_bytes_that_are_not_resp_are_refused(wire: bytes) -> None:
    with pytest.raises(RespProtocolError):
        RespParser().feed(wire)


def test_a_header_line_that_never_ends_is_refused_rather_than_buffered_forever() -> None:
    parser = RespParser()
    assert parser.feed(b"+" + b"a" * 60_000) == []  # long, but could still end
    with pytest.raises(RespProtocolError):
        parser.feed(b"a" * 10_000)


# --- round trips ------------------------------------------------------------------------


def encode(value: object) -> bytes:
    """The RESP2 form of a value the parser returns (the test's own encoder)."""
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if isinstance(value, int):
        return b":%d\r\n" % value
    assert isinstance(value, list)
    return b"*%d\r\n" % len(value) + b"".join(encode(item) for item in value)


values = st.recursive(
    st.none() | st.binary(max_size=40) | st.integers(-(2**63), 2**63 - 1),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=5), st.data())
def test_any_replies_split_anywhere_parse_back(replies: list[object], data: st.DataObject) -> None:
    wire = b"".join(encode(reply) for reply in replies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    parser = RespParser()
    got: list[object] = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        got += parser.feed(wire[start:end])
    assert got == replies


@given(st.lists(st.binary() | st.text(), min_size=1, max_size=6))
def test_encoded_commands_parse_back_as_arrays_of_bulk_strings(args: list[bytes | str]) -> None:
    expected = [a.encode() if isinstance(a, str) else a for a in args]
    assert RespParser().feed(encode_command(args)) == [expected]
