"""Bad input over the WebSocket and HTTP surfaces: each gets its documented answer, nobody else notices.

One gateway with every limit small (and tokens and an Origin allowlist on) serves a watcher
that follows a live stream throughout; every bad client in the matrix gets its error frame,
close code or HTTP status, and afterwards the watcher's stream is still contiguous and live.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import time
from collections.abc import AsyncIterator

import orjson
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bookcast.bench.fanout_publisher import SyntheticPublisher
from mdcore.messages import ErrorMessage, Pong
from tests.integration.gateway_helpers import PAIRS, Probe, counters, start_gateway
from tests.integration.stack_helpers import unique, wait_until_async

pytestmark = pytest.mark.integration

T = 20.0
TOKEN = "s3cret"
GOOD_ORIGIN = "https://good.example"


@pytest_asyncio.fixture
async def stack(infra) -> AsyncIterator[dict]:
    prefix = unique("gwlim")
    publisher = SyntheticPublisher(infra.redis_url, prefix, PAIRS, seed=3)
    publisher.window()
    gateway = start_gateway(
        infra.redis_url, prefix,
        tokens=f"other,{TOKEN}", origins=GOOD_ORIGIN, max_pairs="3", op_rate="5", op_burst="10",
        max_connections_per_ip="40",
    )  # fmt: skip
    stop = asyncio.Event()

    async def publish() -> None:  # a window every 20 ms for as long as the test runs
        while not stop.is_set():
            publisher.window(pairs=["BTC-USD", "ETH-USD"])
            await asyncio.sleep(0.02)

    task = asyncio.create_task(publish())
    try:
        yield {"gateway": gateway, "publisher": publisher, "url": f"{gateway.ws_url}?token={TOKEN}"}
    finally:
        stop.set()
        await task
        gateway.stop()
        publisher.close()


def http_raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=T) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def http_call(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=T)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, json.loads(body) if body else None
    finally:
        conn.close()


async def answer_to(
    url: str, frame: str | bytes, text: bool | None = None
) -> tuple[list[object], int | None]:
    """Send one frame; return what came back within a moment and the close code (None if still open)."""
    probe = await Probe.open(url)
    try:
        await probe.ws.send(frame, text=text)
        await probe.send(op="ping", id="alive?")
        await wait_until_async(lambda: probe._task.done() or bool(probe.of_type(Pong)), T, "pong or close")
        return probe.messages, probe.ws.close_code
    finally:
        await probe.close()


async def test_bad_websocket_input_matrix(stack) -> None:
    url, publisher = stack["url"], stack["publisher"]
    watcher = await Probe.open(url)
    await watcher.send(op="subscribe", pairs=["BTC-USD"], id=1)
    await watcher.wait_seq("BTC-USD", publisher.pairs["BTC-USD"].seq)

    cases = [
        ("garbage", "this is not json", "bad_json"),
        ("not an object", "[1, 2]", "bad_request"),
        ("unknown op", '{"op":"launch","id":3}', "unknown_op"),
        ("bad pairs", '{"op":"subscribe","pairs":"BTC-USD","id":4}', "bad_request"),
        ("unknown pair", '{"op":"subscribe","pairs":["FOO-USD"],"id":5}', "unknown_pair"),
        ("too many pairs", orjson.dumps({"op": "subscribe", "pairs": list(PAIRS[:4]), "id": 6}).decode(),
         "too_many_pairs"),
        ("bad since", '{"op":"subscribe","pairs":["BTC-USD"],"since":{"BTC-USD":{"seq":-1}}}', "bad_request"),
        ("resync unsubscribed", '{"op":"resync","pair":"ETH-USD","id":8}', "bad_request"),
        ("binary", b"\x00\x01binary", "bad_request"),
        ("an id nested 254 deep", '{"op":"ping","id":' + "[" * 254 + "]" * 254 + "}", "bad_request"),
        ("an error echoing a deep id", '{"op":"subscribe","pairs":5,"id":' + "[" * 254 + "]" * 254 + "}",
         "bad_request"),
    ]  # fmt: skip
    for name, frame, code in cases:
        messages, close_code = await answer_to(url, frame)
        errors = [m for m in messages if isinstance(m, ErrorMessage)]
        assert [e.code for e in errors] == [code], name
        assert close_code is None and any(isinstance(m, Pong) for m in messages), (
            f"{name}: connection unusable"
        )

    # a frame over 4 KiB: closed with 1009 (message too big)
    _, close_code = await answer_to(url, "x" * 5000)
    assert close_code == 1009
    # invalid UTF-8 in a text frame: closed with 1007
    _, close_code = await answer_to(url, b"\xff\xfe\xfd", text=True)
    assert close_code == 1007

    # a flood: the bucket (burst 10, 5/s) answers ten, then rate_limited and close 1008
    flood = await Probe.open(url)
    for i in range(40):
        try:
            await flood.send(op="ping", id=i)
        except ConnectionClosed:
            break
    await wait_until_async(lambda: flood._task.done(), T, "the flood to be cut off")
    assert flood.ws.close_code == 1008
    assert [m.code for m in flood.of_type(ErrorMessage)] == ["rate_limited"]
    assert 10 <= len(flood.of_type(Pong)) <= 12
    await flood.close()

    # the watcher never noticed: its stream stayed contiguous (Probe verifies) and moves on
    target = publisher.pairs["BTC-USD"].seq + 3
    await watcher.wait_seq("BTC-USD", target)
    assert not watcher.of_type(ErrorMessage)
    await watcher.close()
    c = counters(stack["gateway"])
    assert c["errors_bad_json"] == 1 and c["errors_too_many_pairs"] == 1 and c["errors_rate_limited"] == 1
    assert c["closes_1009"] == 1 and c["closes_1007"] == 1 and c["closes_1008"] == 1
    assert c["closed_rate_limited"] == 1 and c["binary_frames"] == 1


async def test_a_ping_flood_is_rate_limited_like_ops(stack) -> None:
    """websockets answers every ping by itself: control frames must spend the op bucket too."""
    flood = await Probe.open(stack["url"])
    try:
        for i in range(40):  # the bucket holds 10
            await flood.ws.ping(str(i))
        await flood.send(op="ping", id="after the flood")
    except ConnectionClosed:
        pass
    await wait_until_async(lambda: flood._task.done() or bool(flood.of_type(Pong)), T, "a pong or the close")
    assert not flood.of_type(Pong), "the flood was not cut off"
    assert flood.ws.close_code == 1008
    assert [m.code for m in flood.of_type(ErrorMessage)] == ["rate_limited"]
    await flood.close()
    c = counters(stack["gateway"])
    assert c["closed_rate_limited"] == 1 and c["closes_1008"] == 1


async def test_handshake_tokens_and_origins(stack) -> None:
    gateway = stack["gateway"]
    base = gateway.ws_url

    async def status_of(url: str, **kwargs: object) -> int:
        try:
            ws = await connect(url, proxy=None, **kwargs)
        except InvalidStatus as exc:
            body = json.loads(exc.response.body)
            assert body["type"] == "error" and body["code"] in ("unauthorized", "forbidden_origin")
            return exc.response.status_code
        await ws.close()
        return 101

    assert await status_of(base) == 401
    assert await status_of(f"{base}?token=wrong") == 401
    assert await status_of(f"{base}?token={TOKEN}") == 101
    assert await status_of(base, additional_headers={"Authorization": f"Bearer {TOKEN}"}) == 101
    assert await status_of(f"{base}?token={TOKEN}", origin="https://evil.example") == 403
    assert await status_of(f"{base}?token={TOKEN}", origin=GOOD_ORIGIN) == 101
    c = counters(gateway)
    assert c["refused_unauthorized"] == 2 and c["refused_origin"] == 1


async def test_bad_http_requests_matrix(stack) -> None:
    port = stack["gateway"].port
    auth = {"Authorization": f"Bearer {TOKEN}"}
    cases = [
        ("GET", "/nope", {}, 404, "not_found"),
        ("POST", "/health", {}, 405, "method_not_allowed"),
        ("DELETE", "/snapshot/BTC-USD", auth, 405, "method_not_allowed"),
        ("GET", "/snapshot/BTC-USD", {}, 401, "unauthorized"),
        ("GET", "/snapshot/FOO-USD", auth, 404, "unknown_pair"),
        ("GET", "/snapshot/BTC-USD?depth=abc", auth, 400, "bad_request"),
        ("GET", "/snapshot/BTC-USD?depth=0", auth, 400, "bad_request"),
        ("GET", "/snapshot/BTC-USD?depth=99999999", auth, 400, "bad_request"),
        ("GET", "/ws", {}, 426, "upgrade_required"),
        ("GET", "/snapshot/" + "A" * 2000, auth, 404, "unknown_pair"),
        ("GET", "/snapshot/BTC-USD?depth=%C2%B2", auth, 400, "bad_request"),  # "²" passes str.isdigit
        ("GET", "/snapshot/BTC-USD?depth=" + "9" * 5000, auth, 400, "bad_request"),  # int() refuses it
    ]
    for method, path, headers, status, code in cases:
        got_status, body = http_call(port, method, path, headers)
        assert (got_status, body["code"]) == (status, code), (method, path)
    status, body = http_call(port, "GET", f"/snapshot/BTC-USD?depth=5&token={TOKEN}")
    assert status == 200 and body["type"] == "snapshot" and len(body["bids"]) == 5
    assert http_call(port, "GET", "/pairs")[0] == 200
    # not HTTP at all, a body where none belongs, an endless header: answered or dropped, never a crash
    assert not http_raw(port, b"\x16\x03\x01 not http\r\n\r\n").startswith(b"HTTP/1.1 2")
    assert not http_raw(port, b"GET /health HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").startswith(
        b"HTTP/1.1 2"
    )
    assert http_raw(port, b"GET /health HTTP/1.1\r\nX: " + b"y" * 20000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 4"
    )
    # a header allowed once, sent twice: 400, never a 500
    upgrade = (b"GET /ws?token=" + TOKEN.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")  # fmt: skip
    for repeated in (b"Upgrade: websocket\r\n", b"Origin: " + GOOD_ORIGIN.encode() + b"\r\n",
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"):  # fmt: skip
        once = b"" if repeated.startswith(b"Upgrade") else b"Upgrade: websocket\r\n"
        answer = http_raw(port, upgrade + once + repeated * 2 + b"\r\n")
        assert answer.startswith(b"HTTP/1.1 400"), (repeated, answer[:200])
    dashboard_feed = upgrade.replace(b"GET /ws?", b"GET /dashboard/ws?")  # the other WebSocket path
    answer = http_raw(port, dashboard_feed + b"Upgrade: websocket\r\n" * 2 + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    twice = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
    answer = http_raw(port, b"GET /snapshot/BTC-USD HTTP/1.1\r\nHost: 127.0.0.1\r\n" + twice * 2 + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    status, body = http_call(port, "GET", "/health")
    assert status == 200 and body["ready"], body
    assert body["counters"]["errors_bad_request"] >= 7


async def test_connection_limits_per_ip_and_per_process(infra) -> None:
    prefix = unique("gwconn")
    publisher = SyntheticPublisher(infra.redis_url, prefix, PAIRS, seed=5)
    publisher.window()
    per_ip = start_gateway(infra.redis_url, prefix, max_connections_per_ip="3")
    per_process = start_gateway(infra.redis_url, prefix, max_connections="2", max_connections_per_ip="0")
    try:
        for gateway, allowed, status, counter in (
            (per_ip, 3, 429, "refused_ip_limit"),
            (per_process, 2, 503, "refused_process_limit"),
        ):
            held = [await connect(gateway.ws_url, proxy=None) for _ in range(allowed)]
            with pytest.raises(InvalidStatus) as refused:
                await connect(gateway.ws_url, proxy=None)
            assert refused.value.response.status_code == status
            assert json.loads(refused.value.response.body)["code"] == "too_many_connections"
            await held.pop().close()  # a slot frees up when a connection ends
            await wait_until_async(lambda g=gateway: counters(g).get("connections_closed") == 1, T, "close")
            again = await connect(gateway.ws_url, proxy=None)
            held.append(again)
            for ws in held:
                await ws.close()
            assert counters(gateway)[counter] == 1
    finally:
        per_ip.stop()
        per_process.stop()
        publisher.close()


async def test_handshakes_abandoned_midway_give_their_connection_slot_back(infra) -> None:
    """A client that sends its upgrade and vanishes (a storm's timeouts) must not keep a slot."""
    prefix = unique("gwleak")
    publisher = SyntheticPublisher(infra.redis_url, prefix, PAIRS, seed=6)
    publisher.window()
    gateway = start_gateway(infra.redis_url, prefix, max_connections="5", max_connections_per_ip="5")
    host, port = "127.0.0.1", int(gateway.ws_url.split(":")[2].split("/")[0])
    request = (
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    try:
        for i in range(60):  # send the upgrade, reset the connection 0 to 4.5 ms later
            sock = socket.create_connection((host, port))
            sock.sendall(request)
            time.sleep(0.0005 * (i % 10))  # the client's own timing, not synchronisation
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
        held = []
        for _ in range(5):  # every slot must be free again
            held.append(await asyncio.wait_for(connect(gateway.ws_url, proxy=None), T))
        for ws in held:
            await ws.close()
    finally:
        gateway.stop()
        publisher.close()
