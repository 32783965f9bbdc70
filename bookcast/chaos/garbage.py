"""Bursts of garbage connections against a gateway: each gets an answer, never a 1011 or a 500.

Bad handshakes, garbage and malformed frames, JSON nested deep, huge numbers, ping and op
floods, lying lengths, bad HTTP. They come from another loopback address than the verifying
clients (127.0.0.2), so the gateway's per-address limits fall on them alone. After a
non-fatal error the connection must still answer a ping with a pong. Bounded: a fixed
number of connections, each given a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from bookcast.chaos import wire

SOURCE = "127.0.0.2"
CASE_TIMEOUT_S = 4.0
PROBE = '{"op":"ping","id":"chaos-probe"}'


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one garbage connection got back."""

    case: str
    status: int | None = None  # HTTP status (101 for an upgrade that went through)
    close_code: int | None = None
    errors: tuple[str, ...] = ()  # error codes answered
    pong: bool = False  # the connection still answered the probe
    needs_pong: bool = False  # the case's error is non-fatal: a pong must follow

    @property
    def bad(self) -> str | None:
        """Why this answer breaks a rule, or None."""
        if self.status == 500:
            return "HTTP 500"
        if self.close_code == 1011:
            return "closed 1011"
        if "internal_error" in self.errors:
            return "internal_error"
        if self.needs_pong and not self.pong:
            return f"no pong after a non-fatal error (close {self.close_code})"
        return None


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = b""

    @classmethod
    async def open(cls, port: int) -> _Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(SOURCE, 0))
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def http_status(self) -> int | None:
        """The status of the response to what was sent; None if the gateway just closed."""
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await self.reader.read(65536)
            if not chunk:
                break
            head += chunk
        head, _, self.buffer = head.partition(b"\r\n\r\n")
        return wire.status_of(head)

    async def messages(self, until_pong: bool) -> tuple[int | None, list[str], bool]:
        """Read frames until a close (its code), the probe's pong, or the time is up."""
        errors: list[str] = []
        pong = False
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(CASE_TIMEOUT_S - 0.5):
                while True:
                    frames, self.buffer = wire.parse_frames(self.buffer)
                    for f in frames:
                        if f.opcode == wire.OP_CLOSE:
                            return f.close_code, errors, pong
                        if f.opcode == wire.OP_TEXT:
                            for message in _objects(f.payload):
                                if message.get("type") == "error":
                                    errors.append(str(message.get("code")))
                                elif message.get("type") == "pong" and message.get("id") == "chaos-probe":
                                    pong = True
                    if pong and until_pong:
                        return None, errors, pong
                    chunk = await self.reader.read(65536)
                    if not chunk:
                        return 1006, errors, pong
                    self.buffer += chunk
        return None, errors, pong

    def close(self) -> None:
        self.writer.transport.abort()


def _objects(payload: bytes) -> list[dict]:
    try:
        decoded = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return []
    items = decoded if isinstance(decoded, list) else [decoded]
    return [item for item in items if isinstance(item, dict)]


# --- the cases ------------------------------------------------------------------------------


async def _http(port: int, case: str, request: bytes) -> Outcome:
    conn = await _Conn.open(port)
    try:
        await conn.send(request)
        return Outcome(case, status=await conn.http_status())
    finally:
        conn.close()


async def _ws(
    port: int, case: str, frames: list[bytes], *, fatal: bool, extra: list[tuple[str, str]] | None = None
) -> Outcome:
    """Upgrade, send ``frames`` then the probe; non-fatal cases must get the pong."""
    conn = await _Conn.open(port)
    try:
        await conn.send(wire.handshake())
        status = await conn.http_status()
        if status != 101:
            return Outcome(case, status=status)
        for data in frames:
            await conn.send(data)
        if not fatal:
            await conn.send(wire.text(PROBE))
        code, errors, pong = await conn.messages(until_pong=not fatal)
        return Outcome(case, 101, code, tuple(errors), pong, needs_pong=not fatal)
    finally:
        conn.close()


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _get(target: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n"


def http_cases(rng: random.Random) -> dict[str, bytes]:
    """Requests that must get a 4xx (or no answer at all), never a 500."""
    junk = rng.randbytes(rng.randint(1, 512))
    no_version = wire.handshake(extra=[("Sec-WebSocket-Version", "8")]).replace(b"Version: 13\r\n", b"", 1)
    return {
        "tls_hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + junk,
        "random_bytes": junk,
        "truncated_request": b"GET /ws HTTP/1.1\r\nHost: x\r\n",
        "bad_version": no_version,
        "dup_upgrade": wire.handshake(extra=[("Upgrade", "websocket")]),
        "dup_origin": wire.handshake(extra=[("Origin", "http://a"), ("Origin", "http://b")]),
        "dup_authorization": wire.handshake(extra=[("Authorization", "Bearer a"), ("Authorization", "B b")]),
        "bad_depth": _get(b"/snapshot/BTC-USD?depth=%C2%B2"),
        "long_depth": _get(b"/snapshot/BTC-USD?depth=" + b"9" * 5000),
        "odd_path": _get(b"/snapshot/%00%ff/../../x?%zz=%%&"),
        "post_body": b"POST /snapshot/BTC-USD HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    }


def ws_cases(rng: random.Random) -> dict[str, tuple[list[bytes], bool]]:
    """Frames after a good upgrade, and whether the gateway may end the connection for them.

    Non-fatal ones must be answered with an error and leave the connection usable."""
    junk = rng.randbytes(rng.randint(1, 512))
    big = "9" * rng.randint(300, 1500)
    since = '{"op":"subscribe","pairs":["BTC-USD"],"since":{"BTC-USD":{"epoch":"x","seq":%s}},"id":%s}'
    return {
        "garbage_text": ([wire.text("this is not json")], False),
        "deep_id": ([wire.text('{"op":"ping","id":' + _deep(254) + "}")], False),
        "deep_pairs": ([wire.text('{"op":"subscribe","pairs":' + _deep(rng.randint(33, 1800)) + "}")], False),
        "deep_object": ([wire.text('{"op":"resync","pair":' + '{"a":' * 300 + "1" + "}" * 301)], False),
        "huge_number": ([wire.text(since % (big, big))], False),
        "binary": ([wire.frame(wire.OP_BINARY, junk)], False),
        "invalid_utf8": ([wire.text(b'{"op":"ping","id":"\xff\xfe"}')], True),
        "unmasked": ([wire.frame(wire.OP_TEXT, b'{"op":"ping"}', mask=False)], True),
        "reserved_opcode": ([wire.frame(0x3, junk)], True),
        "rsv_bits": ([wire.frame(wire.OP_TEXT, b"{}", rsv=4)], True),
        "lying_length": ([wire.frame(wire.OP_TEXT, b"{}", claimed_length=1 << 40)], True),
        "oversize": ([wire.text('{"op":"ping","id":"' + "x" * 8192 + '"}')], True),
        "orphan_continuation": ([wire.frame(wire.OP_CONT, b"xx")], True),
        "ping_flood": ([wire.frame(wire.OP_PING, b"p")] * 200, True),
        "op_flood": ([wire.text('{"op":"ping"}')] * 100, True),
    }


def cases(port: int, rng: random.Random) -> list[tuple[str, Callable[[], Awaitable[Outcome]]]]:
    """Every garbage case as (name, coroutine factory); a burst draws from these."""
    menu: list[tuple[str, Callable[[], Awaitable[Outcome]]]] = []
    for name, request in http_cases(rng).items():
        menu.append((name, lambda n=name, r=request: _http(port, n, r)))
    for name, (frames, fatal) in ws_cases(rng).items():
        menu.append((name, lambda n=name, f=frames, x=fatal: _ws(port, n, f, fatal=x)))
    return menu


async def _bounded(name: str, make: Callable[[], Awaitable[Outcome]]) -> Outcome:
    try:
        async with asyncio.timeout(CASE_TIMEOUT_S):
            return await make()
    except (TimeoutError, ConnectionError, OSError):
        return Outcome(name)  # no answer within the time (or reset): allowed, never a 500/1011


async def burst(port: int, count: int, rng: random.Random, concurrency: int = 8) -> list[Outcome]:
    """``count`` garbage connections (every case once when ``count`` allows), a few at a time."""
    menu = cases(port, rng)
    picks = [menu[i % len(menu)] for i in range(count)]
    rng.shuffle(picks)
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str, make: Callable[[], Awaitable[Outcome]]) -> Outcome:
        async with gate:
            return await _bounded(name, make)

    return list(await asyncio.gather(*(one(name, make) for name, make in picks)))
