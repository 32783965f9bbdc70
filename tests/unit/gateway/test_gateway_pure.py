"""The gateway's pure rules: RESP parsing, frames, limits, recovery planning, counter names."""

from __future__ import annotations

import ast
import asyncio
import pathlib

import pytest

from gateway.core.counters import Counters, is_documented
from gateway.core.limits import Admission, TokenBucket, origin_ok, request_token, token_ok
from gateway.core.recovery import chunk_frames, plan_replay, replay_costs_more
from gateway.core.resp import RespError, RespParser, RespProtocolError, Status, encode_command
from gateway.core.wsframe import text_frame
from mdcore.messages import StreamPosition

# --- RESP -------------------------------------------------------------------------------


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


# --- frames -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frame_matches_websockets_own_serialisation(size: int) -> None:
    from websockets.frames import Frame, Opcode

    payload = b"x" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


# --- limits -----------------------------------------------------------------------------


def test_token_bucket_allows_bursts_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.4) is False  # 0.8 token so far
    assert bucket.take(0.5) is True
    assert bucket.take(100.0) and bucket.take(100.0) and bucket.take(100.0)  # refills up to the burst only
    assert not bucket.take(100.0)


def test_admission_counts_per_process_and_per_ip_and_releases() -> None:
    adm = Admission(max_total=3, max_per_ip=2)
    assert adm.admit("a", "1.1.1.1") is None
    assert adm.admit("b", "1.1.1.1") is None
    refusal = adm.admit("c", "1.1.1.1")
    assert refusal is not None and refusal.status == 429
    assert adm.admit("d", "2.2.2.2") is None
    refusal = adm.admit("e", "3.3.3.3")
    assert refusal is not None and refusal.status == 503 and refusal.code == "too_many_connections"
    adm.release("a")
    adm.release("a")  # twice is harmless
    adm.release("never")
    assert adm.total == 2 and adm.per_ip("1.1.1.1") == 1
    assert adm.admit("f", "1.1.1.1") is None
    unlimited = Admission(0, 0)
    assert all(unlimited.admit(i, "x") is None for i in range(100))


def test_tokens_come_from_the_query_or_a_bearer_header() -> None:
    assert request_token("token=abc&x=1", None) == "abc"
    assert request_token("", "Bearer  xyz ") == "xyz"
    assert request_token("", "Basic xyz") is None
    assert request_token("", None) is None
    assert token_ok("abc", {"abc", "def"}) and not token_ok("abd", {"abc"}) and not token_ok(None, {"abc"})


def test_origin_allowlist() -> None:
    allowed = frozenset({"https://app.example"})
    assert origin_ok("https://app.example", allowed)
    assert not origin_ok("https://evil.example", allowed)
    assert origin_ok(None, allowed)  # programs send no Origin
    assert origin_ok("https://anything", frozenset())


# --- recovery ---------------------------------------------------------------------------


def entries(first: int, last: int) -> list[tuple[int, bytes]]:
    return [(s, b"d%d" % s) for s in range(first, last + 1)]


def test_replay_uses_memory_and_history_together_and_refuses_any_hole() -> None:
    head = StreamPosition("e", 10)
    since = StreamPosition("e", 3)
    assert plan_replay(since, head, [entries(6, 10)]) is None  # memory does not reach 4
    assert plan_replay(since, head, [entries(4, 7), entries(6, 10)]) == [b"d%d" % s for s in range(4, 11)]
    assert plan_replay(since, head, [entries(4, 6), entries(8, 10)]) is None  # 7 missing
    assert plan_replay(StreamPosition("other", 3), head, [entries(1, 10)]) is None  # another epoch
    assert plan_replay(StreamPosition("e", 10), head, []) == []  # up to date
    assert plan_replay(StreamPosition("e", 12), head, [], max_ahead=5) == []  # slightly ahead
    assert plan_replay(StreamPosition("e", 20), head, [], max_ahead=5) is None
    assert plan_replay(since, None, [entries(1, 10)]) is None  # nothing to recover from


def test_a_replay_is_read_only_when_it_costs_fewer_bytes_than_a_snapshot() -> None:
    recent = [(s, b"x" * 100) for s in range(1, 6)]  # deltas of 100 bytes
    assert not replay_costs_more(10, recent, 1_000)  # 1,000 bytes: not more than the snapshot
    assert replay_costs_more(11, recent, 1_000)
    assert not replay_costs_more(500, recent, None)  # no snapshot size known yet: try the replay
    assert not replay_costs_more(500, [], 1_000)  # nothing to judge the deltas' size by


def test_replay_runs_are_split_by_size() -> None:
    msgs = [b"x" * 10] * 5
    assert chunk_frames(msgs, 25) == [[msgs[0]] * 2, [msgs[0]] * 2, [msgs[0]]]
    assert chunk_frames([b"y" * 100], 25) == [[b"y" * 100]]
    assert chunk_frames([], 25) == []


# --- counters ---------------------------------------------------------------------------


def test_every_counter_the_gateway_uses_is_documented() -> None:
    """Counter names must be listed in gateway.core.counters.HELP (metrics export them by name)."""
    used: set[str] = set()
    root = pathlib.Path(__file__).resolve().parents[3] / "gateway"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)
                and "counters" in ast.unparse(node.value)
            ):
                used.add(node.slice.value)
    assert used, "the scan found no counter at all"
    assert sorted(n for n in used if not is_documented(n)) == []
    counters = Counters()
    counters.count_close(1008)
    counters.count_error("bad_json")
    assert counters.as_dict() == {"closes_1008": 1, "connections_closed": 1, "errors_bad_json": 1}


# --- garbage collector policy ------------------------------------------------------------


async def test_gc_policy_freezes_live_connections_and_collects_after_churn() -> None:
    import gc

    from gateway.gc_policy import GcPolicy

    counters = Counters()
    policy = GcPolicy(counters, freeze_every=3, collect_after=4)
    try:
        for _ in range(6):
            policy.opened()
        assert counters["gc_freezes"] == 2 and gc.get_freeze_count() > 0
        cycle: list[object] = []
        cycle.append(cycle)  # garbage only a full collection frees …
        gc.freeze()  # … even frozen, as a closed connection's objects may be
        del cycle
        for _ in range(3):
            policy.closed()
        await asyncio.sleep(0)
        assert counters["gc_full_collections"] == 0  # not yet: 3 closed of the 4 needed
        policy.closed()
        await asyncio.sleep(0)
        assert counters["gc_full_collections"] == 1 and counters["gc_full_ms"] >= 0
        disabled = GcPolicy(counters, freeze_every=0)
        disabled.opened()
        assert counters["gc_freezes"] == 2
    finally:
        gc.unfreeze()
