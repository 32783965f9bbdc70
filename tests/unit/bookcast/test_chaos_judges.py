"""What counts as a broken rule for a garbage connection and a fuzzed input (the answers, judged)."""

from __future__ import annotations

from bookcast.chaos.fuzz import WsInput, judge_http, judge_ws
from bookcast.chaos.garbage import Outcome


def test_garbage_answers_that_break_a_rule() -> None:
    assert Outcome("bad_depth", status=400).bad is None
    assert Outcome("tls_hello").bad is None  # dropped without an answer: allowed
    assert Outcome("unmasked", 101, 1002).bad is None
    assert Outcome("bad_depth", status=500).bad == "HTTP 500"
    assert Outcome("deep_id", 101, 1011, needs_pong=True).bad == "closed 1011"
    assert Outcome("deep_id", 101, None, ("internal_error",), True, True).bad == "internal_error"
    assert Outcome("garbage_text", 101, None, ("bad_json",), False, True).bad is not None  # no pong after it
    assert Outcome("garbage_text", 101, None, ("bad_json",), True, True).bad is None


def test_fuzzed_websocket_answers() -> None:
    small = WsInput("text", '{"op":"nope"}')
    assert judge_ws(small, ["unknown_op"], True, None) is None
    assert judge_ws(small, ["internal_error"], True, None) == "error codes ['internal_error']"
    assert judge_ws(small, [], False, 1011) == "closed 1011"
    assert judge_ws(small, [], False, 1009) is not None  # a small frame must not be closed
    assert judge_ws(small, ["bad_json"], False, None) == "no pong within the time after the input"
    big = WsInput("text", "x" * 5000)
    assert big.fatal == {1009} and judge_ws(big, [], False, 1009) is None
    not_utf8 = WsInput("raw_text", b"\xff\xfe")
    assert not_utf8.fatal == {1007} and judge_ws(not_utf8, [], False, 1007) is None
    assert WsInput("raw_text", "é".encode()).fatal == set()
    assert WsInput("ping", b"x" * 125).fatal == set()


def test_fuzzed_http_answers() -> None:
    assert judge_http(None) is None and judge_http(400) is None and judge_http(414) is None
    assert judge_http(500) == "HTTP 500"
    assert judge_http(502) == "HTTP 502, not a documented answer"
