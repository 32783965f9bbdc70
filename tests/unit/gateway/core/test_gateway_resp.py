"""gateway.core.resp: the incremental RESP2 parser and the command encoder."""

from __future__ import annotations

import pytest

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
