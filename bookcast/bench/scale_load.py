"""The scale benchmark's processes: lean sharded Pub/Sub subscribers and a Lua-batch publisher.

A subscriber process holds ``subscribers x nodes`` connections (each subscriber one connection
per primary, ``SSUBSCRIBE``d there to every channel that primary owns, one command per
partition: a multi-channel ``SSUBSCRIBE`` must stay in one slot). Delivered messages are
counted with ``bytearray.count`` of the RESP2 header of an ``smessage`` push (``$8\\r\\nsmessage
\\r\\n``) straight in the receive buffer of an ``asyncio.BufferedProtocol``, carrying the last
few bytes over to the next read so a header split across reads still counts once: no parsing,
no per-message objects (see :func:`counting_cost` for what that saves against
``gateway.core.resp.RespParser``).

A publisher process runs one thread per primary, each a closed loop of pipelined ``EVALSHA``
calls of :data:`SPUBLISH_LUA` on that primary (one partition's channels as KEYS, so every call
stays in one slot), round-robin over the partitions that primary owns. Every
``check_ms`` it reads the largest subscriber output buffer on its node (``CLIENT LIST TYPE
pubsub``) and pauses while it is above ``backlog_bytes``: when the subscribers are the slower
side the publisher waits for them (the pause is reported) instead of having the server drop
them at its output-buffer limit.

Both are driven over a ``multiprocessing`` pipe by :mod:`bookcast.bench.scale`.
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
import time
from multiprocessing.connection import Connection

import redis

SMESSAGE = b"$8\r\nsmessage\r\n"  # the kind field of every RESP2 smessage push
SSUBSCRIBED = b"$10\r\nssubscribe\r\n"  # the kind field of every SSUBSCRIBE confirmation
_KEEP = len(SMESSAGE) - 1  # bytes carried over between reads: a split header counts once
_BUFFER = 1 << 20  # receive buffer per connection

# KEYS: one partition's channels. ARGV: payload, messages. Returns {messages, receivers}.
SPUBLISH_LUA = """
local payload, n, nk = ARGV[1], tonumber(ARGV[2]), #KEYS
local receivers = 0
for i = 0, n - 1 do
  receivers = receivers + redis.call('SPUBLISH', KEYS[(i % nk) + 1], payload)
end
return {n, receivers}
"""

# (node index, host, port, channels of each partition that node owns)
Target = tuple[int, str, int, list[list[str]]]


def command(*args: str | bytes) -> bytes:
    """One RESP2 command."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


class Counter(asyncio.BufferedProtocol):
    """One subscriber connection to one primary: counts smessage pushes and bytes, nothing else."""

    def __init__(self, subscribe: bytes, channels: int, ready: asyncio.Future[None]) -> None:
        self.buf = bytearray(_BUFFER)
        self.view = memoryview(self.buf)
        self.keep = 0
        self.messages = 0
        self.bytes = 0
        self.closed = False
        self._subscribe = subscribe
        self._pending = channels  # confirmations still to come
        self._replies = b""  # everything received while subscribing (a few KiB)
        self._ready = ready
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        transport.write(self._subscribe)  # type: ignore[attr-defined]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view[self.keep :]

    def buffer_updated(self, nbytes: int) -> None:
        buf = self.buf
        end = self.keep + nbytes
        self.bytes += nbytes
        self.messages += buf.count(SMESSAGE, 0, end)
        if self._pending:
            self._confirmations(bytes(buf[self.keep : end]))
        keep = min(_KEEP, end)
        buf[:keep] = buf[end - keep : end]
        self.keep = keep

    def _confirmations(self, data: bytes) -> None:
        chunk = self._replies = self._replies + data
        if chunk.startswith(b"-") or b"\r\n-" in chunk:
            error = chunk[chunk.find(b"-") :].split(b"\r\n", 1)[0].decode(errors="replace")
            if not self._ready.done():
                self._ready.set_exception(ConnectionError(f"SSUBSCRIBE refused: {error}"))
            return
        if chunk.count(SSUBSCRIBED) >= self._pending and not self._ready.done():
            self._pending = 0
            self._replies = b""
            self._ready.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._ready.done():
            self._ready.set_exception(ConnectionError(f"closed while subscribing: {exc}"))

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


async def _subscribe_all(targets: list[Target], subscribers: int) -> list[tuple[int, Counter]]:
    loop = asyncio.get_running_loop()
    counters: list[tuple[int, Counter]] = []
    waits = []
    for _ in range(subscribers):
        for node, host, port, partitions in targets:
            request = b"".join(command("SSUBSCRIBE", *channels) for channels in partitions)
            ready: asyncio.Future[None] = loop.create_future()
            channels = sum(len(c) for c in partitions)
            _, proto = await loop.create_connection(
                functools.partial(Counter, request, channels, ready), host, port
            )
            counters.append((node, proto))
            waits.append(ready)
    await asyncio.wait_for(asyncio.gather(*waits), 60)
    return counters


def _tally(counters: list[tuple[int, Counter]], nodes: int) -> dict[str, object]:
    messages, received = [0] * nodes, [0] * nodes
    for node, proto in counters:
        messages[node] += proto.messages
        received[node] += proto.bytes
    closed = sum(proto.closed for _, proto in counters)
    return {"messages": messages, "bytes": received, "closed": closed, "at": time.monotonic()}


async def _serve_subscribers(pipe: Connection, targets: list[Target], subscribers: int, nodes: int) -> None:
    loop = asyncio.get_running_loop()
    try:
        counters = await _subscribe_all(targets, subscribers)
    except (OSError, TimeoutError, ConnectionError) as exc:
        pipe.send({"error": f"{type(exc).__name__}: {exc}"})
        return
    pipe.send({"connections": len(counters)})
    while True:
        try:
            request = await loop.run_in_executor(None, pipe.recv)
        except EOFError:  # the orchestrator is gone
            request = "stop"
        if request == "mark":
            pipe.send(_tally(counters, nodes))
        else:
            for _, proto in counters:
                proto.abort()
            if request == "stop":
                pipe.send({"stopped": len(counters)})
            return


def subscriber_main(pipe: Connection, targets: list[Target], subscribers: int, nodes: int) -> None:
    """Entry point of a subscriber process (``multiprocessing``, spawn)."""
    import uvloop

    uvloop.run(_serve_subscribers(pipe, targets, subscribers, nodes))


_OMEM = re.compile(rb"omem=(\d+)")


class _NodeLoop(threading.Thread):
    """Closed loop of pipelined script calls on one primary, paced by its subscribers' backlog."""

    def __init__(
        self,
        target: Target,
        payload: bytes,
        batch: int,
        depth: int,
        backlog_bytes: int,
        check_ms: float,
        go: threading.Event,
        halt: threading.Event,
    ) -> None:
        super().__init__(daemon=True, name=f"publish-node-{target[0]}")
        self.node, host, port, self.partitions = target
        self.client = redis.Redis(host=host, port=port, socket_timeout=30, socket_connect_timeout=10)
        self.sha = self.client.script_load(SPUBLISH_LUA)
        self.payload, self.batch, self.depth = payload, batch, depth
        self.backlog_bytes, self.check_s = backlog_bytes, check_ms / 1000
        self.go, self.halt = go, halt
        self.published = self.receivers = self.calls = 0
        self.paused_s = 0.0
        self.max_backlog = 0
        self.error: str | None = None

    def backlog(self) -> int:
        reply = self.client.execute_command("CLIENT", "LIST", "TYPE", "pubsub")
        raw = reply if isinstance(reply, bytes) else str(reply).encode()
        return max((int(v) for v in _OMEM.findall(raw)), default=0)

    def run(self) -> None:
        try:
            self._loop()
        except (redis.RedisError, OSError) as exc:
            self.error = f"node {self.node}: {type(exc).__name__}: {exc}"
        finally:
            self.client.close()

    def _loop(self) -> None:
        self.go.wait()
        turn, next_check = 0, 0.0
        batch = str(self.batch)
        while not self.halt.is_set():
            pipe = self.client.pipeline(transaction=False)
            for _ in range(self.depth):
                keys = self.partitions[turn % len(self.partitions)]
                turn += 1
                pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, self.payload, batch)
            for messages, receivers in pipe.execute():
                self.published += messages
                self.receivers += receivers
                self.calls += 1
            now = time.monotonic()
            if self.backlog_bytes and now >= next_check:
                next_check = now + self.check_s
                backlog = self.backlog()
                self.max_backlog = max(self.max_backlog, backlog)
                if backlog > self.backlog_bytes:
                    waited = time.monotonic()
                    while backlog > self.backlog_bytes and not self.halt.is_set():
                        time.sleep(0.002)
                        backlog = self.backlog()
                    self.paused_s += time.monotonic() - waited

    def figures(self) -> dict[str, object]:
        return {
            "published": self.published,
            "receivers": self.receivers,
            "calls": self.calls,
            "paused_s": self.paused_s,
            "max_backlog": self.max_backlog,
            "error": self.error,
        }


def _totals(loops: list[_NodeLoop], nodes: int) -> dict[str, object]:
    per = [loop.figures() for loop in loops]
    out: dict[str, object] = {"at": time.monotonic(), "errors": [p["error"] for p in per if p["error"]]}
    for name in ("published", "receivers", "calls", "paused_s", "max_backlog"):
        values = [0] * nodes
        for loop, figures in zip(loops, per, strict=True):
            values[loop.node] = figures[name]
        out[name] = values
    return out


def publisher_main(
    pipe: Connection,
    targets: list[Target],
    nodes: int,
    payload: bytes,
    batch: int,
    depth: int,
    backlog_bytes: int,
    check_ms: float,
) -> None:
    """Entry point of a publisher process: ``ready``, then ``start`` / ``mark`` / ``stop``."""
    go, halt = threading.Event(), threading.Event()
    try:
        loops = [_NodeLoop(t, payload, batch, depth, backlog_bytes, check_ms, go, halt) for t in targets]
    except (redis.RedisError, OSError) as exc:
        pipe.send({"error": f"{type(exc).__name__}: {exc}"})
        return
    for loop in loops:
        loop.start()
    pipe.send({"ready": len(loops)})
    while True:
        try:
            request = pipe.recv()
        except EOFError:
            request = "abort"
        if request == "start":
            go.set()
            pipe.send({"started": time.monotonic()})
        elif request == "mark":
            pipe.send(_totals(loops, nodes))
        else:
            halt.set()
            go.set()
            for loop in loops:
                loop.join(30)
            if request == "stop":
                pipe.send(_totals(loops, nodes))
            return


def counting_cost(messages: int = 20_000, size: int = 300) -> dict[str, float]:
    """µs per message of counting smessage headers vs parsing with ``gateway.core.resp.RespParser``,
    over the same bytes in 256 KiB reads (what one subscriber read looks like)."""
    from gateway.core.resp import RespParser

    channel = b"bench:{p3}:delta:BTC-USD"
    one = b"*3\r\n%s$%d\r\n%s\r\n$%d\r\n%s\r\n" % (SMESSAGE, len(channel), channel, size, b"x" * size)
    stream = one * messages
    chunks = [stream[i : i + 262_144] for i in range(0, len(stream), 262_144)]
    counter = Counter(b"", 0, None)  # type: ignore[arg-type]  # nothing to confirm: no future needed
    t0 = time.perf_counter()
    for chunk in chunks:
        counter.get_buffer(-1)[: len(chunk)] = chunk  # stands in for the kernel's copy
        counter.buffer_updated(len(chunk))
    t1 = time.perf_counter()
    counted = counter.messages
    parser = RespParser()
    parsed = 0
    for chunk in chunks:
        parsed += sum(1 for r in parser.feed(chunk) if isinstance(r, list) and r[0] == b"smessage")
    t2 = time.perf_counter()
    if counted != messages or parsed != messages:
        raise AssertionError(f"counting found {counted}, parsing {parsed}, of {messages}")
    return {"count_us": (t1 - t0) / messages * 1e6, "resp_parser_us": (t2 - t1) / messages * 1e6}
