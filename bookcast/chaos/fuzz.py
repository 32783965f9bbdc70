"""A protocol fuzzer for the gateway's WebSocket and HTTP surfaces (hypothesis-generated inputs).

WebSocket: client ops of random shapes (every field of every type, unicode, numbers far
past 64 bits, JSON nested thousands deep), raw text, binary frames, text frames that are
not UTF-8, oversized frames, pings with payloads. HTTP: methods, paths, query strings and
headers (repeats included) sent raw. The rules (protocol.md sections 4 and 9): never a
1011 close, never an HTTP 500, never ``internal_error``; an error frame carries a
documented code; after any non-fatal input the same connection still answers a ping with
a pong. The gateway's log is checked for tracebacks by the caller.
"""

from __future__ import annotations

import json
import socket
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

MAX_FRAME = 4096  # the gateway's default client frame limit (close 1009 beyond it)
WS_ERROR_CODES = frozenset({"bad_json", "bad_request", "unknown_op", "unknown_pair", "too_many_pairs"})
# protocol.md section 9, plus what the websockets library answers itself before the gateway
# sees a request: 414 (request line over 8 KiB) and 431 (header lines too long, too many)
HTTP_STATUSES = frozenset({101, 200, 400, 401, 403, 404, 405, 426, 429, 503, 414, 431})
ANSWER_TIMEOUT_S = 5.0
HTTP_TIMEOUT_S = 0.5  # a request announcing a body it never sends gets no answer: wait that long


# --- inputs ------------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=24)
HUGE = st.integers(min_value=-(10**400), max_value=10**400)
SCALARS = (
    st.none() | st.booleans() | st.integers() | HUGE | st.floats(allow_nan=False, allow_infinity=False) | TEXT
)
JSON = st.recursive(
    SCALARS, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(TEXT, kids, max_size=4), max_leaves=10
)


def _nested(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "0" + "}" * depth


def _deep_op(depth: int, kind: str, where: str, op: str) -> str:
    """An op whose ``where`` field is JSON nested ``depth`` deep (as text: orjson stops at 255)."""
    return json.dumps({"op": op, where: "__DEEP__"}).replace('"__DEEP__"', _nested(depth, kind))


@dataclass(frozen=True, slots=True)
class WsInput:
    """One thing a client sends: a text frame (str), raw bytes as a text frame, binary, or a ping."""

    kind: str  # "text", "raw_text" (bytes in a text frame, maybe not UTF-8), "binary", "ping"
    data: str | bytes

    @property
    def size(self) -> int:
        return len(self.data.encode() if isinstance(self.data, str) else self.data)

    @property
    def fatal(self) -> set[int]:
        """Close codes this input may get (it is then not expected to leave the connection usable)."""
        codes = set()
        if self.size > MAX_FRAME and self.kind != "ping":
            codes.add(1009)
        if self.kind == "raw_text":
            try:
                bytes(self.data).decode("utf-8")  # type: ignore[arg-type]
            except UnicodeDecodeError:
                codes.add(1007)
        return codes


def ws_inputs(pairs: Sequence[str]) -> st.SearchStrategy[WsInput]:
    pair_like = st.sampled_from([*pairs, "FOO-USD", "", "btc-usd", "BTC-USD "]) | TEXT
    op_name = st.sampled_from(["subscribe", "unsubscribe", "resync", "ping"]) | TEXT | JSON
    since = st.dictionaries(
        pair_like, st.fixed_dictionaries({"epoch": TEXT | JSON, "seq": HUGE | JSON}), max_size=3
    )
    ops = st.fixed_dictionaries(
        {"op": op_name},
        optional={
            "pairs": st.lists(pair_like, max_size=6) | JSON,
            "pair": pair_like | JSON,
            "id": JSON,
            "since": since | JSON,
            "extra": JSON,
        },
    )
    deep = st.builds(
        _deep_op, st.integers(1, 2100), st.sampled_from(["list", "object"]),
        st.sampled_from(["id", "pairs", "pair", "since"]), st.sampled_from(["subscribe", "ping", "resync"]),
    )  # fmt: skip
    big = st.builds(lambda n: json.dumps({"op": "ping", "id": "x" * n}), st.integers(3000, 6000))
    return st.one_of(
        st.builds(
            lambda op, ascii_: WsInput("text", json.dumps(op, ensure_ascii=ascii_)), ops, st.booleans()
        ),
        st.builds(
            lambda text: WsInput("text", text),
            deep | big | TEXT | st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=200),
        ),
        st.builds(lambda raw: WsInput("raw_text", raw), st.binary(min_size=1, max_size=300)),
        st.builds(lambda raw: WsInput("binary", raw), st.binary(max_size=600)),
        st.builds(lambda raw: WsInput("ping", raw), st.binary(max_size=125)),
    )


def http_inputs(pairs: Sequence[str]) -> st.SearchStrategy[bytes]:
    safe = st.text(alphabet=string.ascii_letters + string.digits + "-_.~:/", max_size=12)
    anything = st.text(max_size=16).map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe=""))
    method = st.one_of(
        st.just("GET"), st.just("GET"),
        st.sampled_from(["POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]),
        st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=8),
    )  # fmt: skip
    base = st.sampled_from(
        ["/", "/ws", "/pairs", "/health", "/health/ready", "/health/live", "/snapshot/", "/dashboard",
         "/binance/api/v3/depth", "/ws/0", *[f"/snapshot/{p}" for p in pairs]]
    )  # fmt: skip
    path = st.tuples(base, st.sampled_from(["", "/"]) | safe | anything).map("".join)
    depth = st.sampled_from(["1", "25", "0", "-1", "10001", "²", "%C2%B2", "9" * 5000, "", "1e3", " 5"])
    query = st.lists(
        st.tuples(st.sampled_from(["depth", "token", "symbol", "limit"]) | anything, depth | anything),
        max_size=4,
    ).map(lambda kv: "&".join(f"{k}={v}" for k, v in kv))
    header_name = st.sampled_from(
        ["Upgrade", "Origin", "Authorization", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
         "Host", "Content-Length", "X-Forwarded-For", "Accept", "Transfer-Encoding", "X-MBX-APIKEY"]
    ) | st.text(alphabet=string.ascii_letters + "-", min_size=1, max_size=12)  # fmt: skip
    header_value = st.sampled_from(
        ["websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", "0", "chunked"]
    ) | st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""), max_size=40)
    headers = st.lists(st.tuples(header_name, header_value), max_size=8)

    def request(m: str, p: str, q: str, hs: list[tuple[str, str]]) -> bytes:
        lines = [f"{m} {p}{'?' + q if q else ''} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in hs)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")

    return st.builds(request, method, path, query, headers)


# Inputs seen to break the gateway before issue 13's fixes: always tried, whatever the seed.
KNOWN_WS = [
    WsInput("text", '{"op":"ping","id":' + _nested(254, "list") + "}"),
    WsInput("text", '{"op":"subscribe","pairs":5,"id":' + _nested(254, "list") + "}"),
    WsInput("text", '{"op":"subscribe","pairs":[["x"]],"id":1}'),
    WsInput("binary", b"\x00\x01binary"),
]
KNOWN_HTTP = [
    b"GET /snapshot/BTC-USD?depth=%C2%B2 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /snapshot/BTC-USD?depth=" + b"9" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    *(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        + f"{name}: a\r\n{name}: b\r\n\r\n".encode()
        for name in ("Upgrade", "Origin", "Authorization")
    ),
]


def _with_examples(test: Any, cases: Sequence[object]) -> Any:
    for case in cases:
        test = example(case)(test)
    return test


# --- sending and judging -----------------------------------------------------------------------


@dataclass
class FuzzTally:
    """What the inputs got back; ``failures`` are broken rules (with the input that broke them)."""

    ws_inputs: int = 0
    http_inputs: int = 0
    ws_answers: Counter[str] = field(default_factory=Counter)
    http_answers: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ws_inputs": self.ws_inputs,
            "http_inputs": self.http_inputs,
            "inputs": self.ws_inputs + self.http_inputs,
            "ws_answers": dict(sorted(self.ws_answers.items())),
            "http_answers": dict(sorted(self.http_answers.items())),
            "failures": self.failures[:20],
        }


class WsProbe:
    """One connection reused across inputs; opened again after an input that may end it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: ClientConnection | None = None
        self.probes = 0

    def _open(self) -> ClientConnection:
        if self.ws is None:
            opened = connect(
                self.url, compression=None, proxy=None, open_timeout=ANSWER_TIMEOUT_S, max_size=None
            )
            self.ws = opened.__enter__()  # what ``with`` does; it is closed in close() or by the gateway
        return self.ws

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    def send(self, item: WsInput) -> tuple[list[str], bool, int | None]:
        """Send ``item`` and a ping op; return the error codes, whether the pong came, the close code."""
        ws = self._open()
        self.probes += 1
        probe_id = f"fuzz-{self.probes}"
        errors: list[str] = []
        try:
            if item.kind == "ping":
                ws.ping(item.data)
            else:
                ws.send(item.data, text=item.kind != "binary")
            ws.send(orjson.dumps({"op": "ping", "id": probe_id}).decode())
            while True:
                frame = ws.recv(timeout=ANSWER_TIMEOUT_S)
                for message in _messages(frame):
                    if message.get("type") == "error":
                        errors.append(str(message.get("code")))
                    elif message.get("type") == "pong" and message.get("id") == probe_id:
                        return errors, True, None
        except ConnectionClosed as closed:
            self.ws = None
            return errors, False, closed.rcvd.code if closed.rcvd else 1006
        except TimeoutError:
            self.close()
            return errors, False, None


def _messages(frame: str | bytes) -> list[dict]:
    try:
        decoded = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return []
    items = decoded if isinstance(decoded, list) else [decoded]
    return [item for item in items if isinstance(item, dict)]


def judge_ws(item: WsInput, errors: list[str], pong: bool, close: int | None) -> str | None:
    """The rule this answer broke, or None."""
    if close == 1011:
        return "closed 1011"
    wrong = [code for code in errors if code not in WS_ERROR_CODES]
    if wrong:
        return f"error codes {wrong}"
    if close is not None and close not in item.fatal:
        return f"closed {close} after an input that must leave the connection usable"
    if close is None and not pong and not item.fatal:
        return "no pong within the time after the input"
    return None


def send_http(port: int, request: bytes) -> int | None:
    """The status the gateway answered ``request`` with, None if it dropped it unanswered."""
    with socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT_S) as sock:
        sock.sendall(request)
        head = b""
        try:
            while b"\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
        except (TimeoutError, ConnectionError):
            return None
    first = head.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) >= 2 and first[1].isdigit() else None


def judge_http(status: int | None) -> str | None:
    if status == 500:
        return "HTTP 500"
    if status is not None and status not in HTTP_STATUSES:
        return f"HTTP {status}, not a documented answer"
    return None


def fuzz(
    url: str, port: int, pairs: Sequence[str], examples: int, seed: int = 0, tally: FuzzTally | None = None
) -> FuzzTally:
    """``examples`` WebSocket inputs and as many HTTP ones; raises AssertionError on a broken rule
    (hypothesis shrinks it to a small input first). ``tally`` counts as it goes, also on failure."""
    tally = tally if tally is not None else FuzzTally()
    probe = WsProbe(url)
    common = settings(
        max_examples=examples, deadline=None, database=None, derandomize=False,
        suppress_health_check=list(HealthCheck), print_blob=False,
    )  # fmt: skip

    @hypothesis_seed(seed)
    @common
    @given(ws_inputs(pairs))
    @lambda test: _with_examples(test, KNOWN_WS)
    def websocket_inputs(item: WsInput) -> None:
        tally.ws_inputs += 1
        errors, pong, close = probe.send(item)
        answer = f"close {close}" if close is not None else "pong" if pong else "silence"
        tally.ws_answers[answer] += 1
        for code in errors:
            tally.ws_answers[f"error {code}"] += 1
        broken = judge_ws(item, errors, pong, close)
        if broken:
            tally.failures.append(f"websocket {item.kind} {item.data!r:.200}: {broken}")
            raise AssertionError(f"{broken}: {item.kind} {item.data!r:.300}")

    @hypothesis_seed(seed)
    @common
    @given(http_inputs(pairs))
    @lambda test: _with_examples(test, KNOWN_HTTP)
    def http_requests(request: bytes) -> None:
        tally.http_inputs += 1
        status = send_http(port, request)
        tally.http_answers["no answer" if status is None else str(status)] += 1
        broken = judge_http(status)
        if broken:
            tally.failures.append(f"http {request!r:.200}: {broken}")
            raise AssertionError(f"{broken}: {request!r:.300}")

    try:
        websocket_inputs()
        http_requests()
    finally:
        probe.close()
    return tally
