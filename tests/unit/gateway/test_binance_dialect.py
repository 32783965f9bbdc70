"""The Binance dialect on a real websockets server, fed by a fake hub, read by the reference client.

The fake hub plays the gateway's part of the contract (``HubPort`` plus the ``on_delta`` /
``on_reset`` calls): a source book per pair makes verified deltas, a replica applies them
and hands them to the dialect, and the test can make the replica miss deltas and reload
(an unrecoverable gap) or start a new epoch. The client knows nothing of bookcast.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
from collections import Counter

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.binance.config import BinanceConfig
from gateway.binance.dialect import BinanceDialect, BookUnavailableError
from mdcore.book import ASK, BID, OrderBook
from mdcore.instruments import instrument
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, Snapshot
from mdcore.wire_format import book_checksum
from tests.binance_client.binance_reference_client import ReferenceDepthClient, http_get_json

T = 5.0
PAIRS = ("BTC-USD", "ETH-USD", "SOL-USD")
EPOCH = "1732190400000-aaaaaa"


class Source:
    """md_service's side of one pair: a book, an epoch, a seq, and verified deltas."""

    def __init__(self, pair: str, epoch: str, seed: int) -> None:
        self.pair, self.epoch, self.seq = pair, epoch, 0
        self.inst = instrument(pair)
        self.book = OrderBook()
        self.rng = random.Random(seed)

    def step(self) -> Delta:
        fp, fq = self.inst.format_price, self.inst.format_qty
        changes: tuple[list[tuple[str, str]], list[tuple[str, str]]] = ([], [])
        for side, index, base in ((BID, 0, 100_000), (ASK, 1, 100_050)):
            for price in {base + self.rng.randint(0, 40) for _ in range(self.rng.randint(1, 4))}:
                qty = 0 if self.rng.random() < 0.25 else self.rng.randint(1, 10**6)
                self.book.set_level(side, price, qty)
                changes[index].append((fp(price), fq(qty)))
        self.seq += 1
        ts = 1_732_190_400_000_000_000 + self.seq * 100_000_000
        return Delta(self.pair, self.epoch, self.seq, ts, ts, changes[0], changes[1], self.checksum())

    def checksum(self) -> int:
        return book_checksum(self.book, self.inst)

    def local(self) -> LocalBook:
        fp, fq = self.inst.format_price, self.inst.format_qty
        local = LocalBook(self.pair)
        bids = [(fp(p), fq(q)) for p, q in self.book.iter_side(BID)]
        asks = [(fp(p), fq(q)) for p, q in self.book.iter_side(ASK)]
        local.load_snapshot(Snapshot(self.pair, self.epoch, self.seq, 0, bids, asks, self.checksum()))
        return local


class FakeHub:
    def __init__(self) -> None:
        self.sources = {pair: Source(pair, EPOCH, seed) for seed, pair in enumerate(PAIRS)}
        self.replicas: dict[str, LocalBook] = {}
        self.wanted: Counter[str] = Counter()
        self.redis_down = False
        self.dialect: BinanceDialect | None = None

    async def offered_pairs(self) -> set[str]:
        return set(PAIRS)

    async def want(self, pair: str) -> None:
        self.wanted[pair] += 1
        self.replicas.setdefault(pair, self.sources[pair].local())

    def unwant(self, pair: str) -> None:
        self.wanted[pair] -= 1

    def live_book(self, pair: str) -> LocalBook | None:
        return self.replicas.get(pair)

    async def load_book(self, pair: str) -> LocalBook | None:
        if self.redis_down:
            raise BookUnavailableError("redis is down")
        return self.sources[pair].local()

    def publish(self, pair: str, deliver: bool = True) -> None:
        """One window of ``pair``; with ``deliver=False`` the replica never gets it (Pub/Sub lost it)."""
        delta = self.sources[pair].step()
        replica = self.replicas.get(pair)
        if deliver and replica is not None:
            replica.apply_delta(delta)
            assert self.dialect is not None
            self.dialect.on_delta(pair, delta)

    def reload(self, pair: str) -> None:
        """History did not reach: the replica loads the whole book and tells the dialect."""
        self.replicas[pair] = self.sources[pair].local()
        assert self.dialect is not None
        self.dialect.on_reset(pair, self.replicas[pair])


class Stack:
    def __init__(self, cfg: BinanceConfig | None = None) -> None:
        self.hub = FakeHub()
        self.now_ms = 1_732_190_400_000
        self.mono = 1000.0  # the dialect's monotonic clock, moved by the test
        self.dialect = BinanceDialect(self.hub, cfg, wall_ms=lambda: self.now_ms, monotonic=lambda: self.mono)
        self.hub.dialect = self.dialect

    async def __aenter__(self) -> Stack:
        self._server = await serve(
            self.dialect.serve,
            "127.0.0.1",
            0,
            process_request=self.dialect.process_request,
            max_size=4096,  # the gateway's limit for native frames; the dialect raises its own
            ping_interval=None,  # the dialect sets Binance's keepalive per connection
        ).__aenter__()
        port = self._server.sockets[0].getsockname()[1]
        self.ws_base = f"ws://127.0.0.1:{port}/binance"
        self.rest_base = f"http://127.0.0.1:{port}/binance"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def rest(self, target: str) -> tuple[int, dict[str, str], object]:
        return await asyncio.to_thread(http_get_json, f"{self.rest_base}{target}")

    def update_id(self, pair: str) -> int:
        local = self.hub.replicas[pair]
        return self.dialect.ids(pair).update_id(local.epoch, local.seq)


async def _converge(stack: Stack, client: ReferenceDepthClient, pair: str) -> None:
    """Publish until the client's book is at the replica's id, then check it equals REST depth there."""
    symbol = pair.replace("-", "")
    book = client.books[symbol]
    for _ in range(100):
        stack.hub.publish(pair)
        try:
            await client.wait_for(lambda: book.last_update_id == stack.update_id(pair), 0.2)
            break
        except TimeoutError:
            continue
    status, _, depth = await stack.rest(f"/api/v3/depth?symbol={symbol}&limit=5000")
    assert status == 200
    assert book.last_update_id == depth["lastUpdateId"] == stack.update_id(pair)
    assert book.sorted_bids() == depth["bids"] and book.sorted_asks() == depth["asks"]


async def test_reference_clients_in_every_mode_follow_three_symbols_through_gaps_and_epochs() -> None:
    symbols = [p.replace("-", "") for p in PAIRS]
    # The clock is frozen in one minute, and every snapshot here costs 250 weight: lift the limit.
    async with Stack(BinanceConfig(weight_limit=10**6)) as stack:
        clients = [
            ReferenceDepthClient(stack.ws_base, stack.rest_base, symbols, mode=mode)
            for mode in ("raw", "subscribe", "combined")
        ]
        for client in clients:
            await client.__aenter__()
        try:
            await _wait(
                lambda: all(stack.hub.wanted[p] for p in PAIRS) and len(stack.dialect.connections) == 3
            )
            for client in clients:
                for pair in PAIRS:
                    await _converge(stack, client, pair)
            # BTC: the replica lost windows for good and reloaded; ETH: md_service started a new epoch.
            for _ in range(3):
                stack.hub.publish("BTC-USD", deliver=False)
            stack.hub.reload("BTC-USD")
            stack.hub.sources["ETH-USD"].epoch = "1732190460000-bbbbbb"
            stack.hub.sources["ETH-USD"].seq = 0
            stack.hub.reload("ETH-USD")
            for client in clients:
                for pair in PAIRS:
                    await _converge(stack, client, pair)
            for client in clients:
                assert client.books["BTCUSD"].resyncs == 1
                assert client.books["ETHUSD"].resyncs == 1
                assert client.books["SOLUSD"].resyncs == 0
                assert client.connects == 1 and not client.errors
            assert clients[1].replies == [{"result": None, "id": 1}]
        finally:
            for client in clients:
                await client.__aexit__(None, None, None)
        await _wait(lambda: not stack.dialect.connections and not +stack.hub.wanted)


async def _wait(predicate, timeout: float = T) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)  # polling a plain attribute; there is no event to await


async def test_rest_over_http_with_binance_headers_and_errors() -> None:
    async with Stack() as stack:
        status, headers, body = await stack.rest("/api/v3/ping")
        assert (status, body) == (200, {})
        assert headers["Content-Type"] == "application/json" and headers["X-MBX-USED-WEIGHT-1M"] == "1"
        assert "Date" in headers
        status, _, info = await stack.rest('/api/v3/exchangeInfo?symbols=["BTCUSD","SOLUSD"]')
        assert status == 200 and [s["symbol"] for s in info["symbols"]] == ["BTCUSD", "SOLUSD"]
        status, _, body = await stack.rest("/api/v3/depth?symbol=FOO")
        assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
        # No replica yet: read from "Redis"; when that fails, -1001.
        status, _, depth = await stack.rest("/api/v3/depth?symbol=ETHUSD")
        assert status == 200 and depth["lastUpdateId"] == stack.dialect.ids("ETH-USD").update_id(EPOCH, 0)
        stack.hub.redis_down = True
        status, _, body = await stack.rest("/api/v3/depth?symbol=ETHUSD")
        assert status == 503 and body["code"] == -1001
        status, _, body = await stack.rest("/ws/btcusd@depth")  # not an upgrade
        assert status == 426


async def test_handshake_refuses_unknown_streams() -> None:
    async with Stack() as stack:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"{stack.ws_base}/ws/dogeusd@depth"):
                pass
        assert info.value.response.status_code == 400
        assert orjson.loads(info.value.response.body)["code"] == 2


async def test_methods_over_the_wire_and_combined_by_property() -> None:
    async with Stack() as stack, connect(f"{stack.ws_base}/ws/btcusd@depth@100ms") as ws:
        await ws.send('{"method":"SUBSCRIBE","params":["ethusd@depth@100ms","btcusd@depth@100ms"],"id":1}')
        assert orjson.loads(await ws.recv()) == {"result": None, "id": 1}
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":2}')
        assert orjson.loads(await ws.recv()) == {
            "result": ["btcusd@depth@100ms", "ethusd@depth@100ms"],
            "id": 2,
        }
        stack.hub.publish("BTC-USD")
        event = orjson.loads(await ws.recv())
        assert (
            event["e"] == "depthUpdate"
            and event["s"] == "BTCUSD"
            and event["U"] == stack.update_id("BTC-USD")
        )
        await ws.send('{"method":"SET_PROPERTY","params":["combined",true],"id":3}')
        assert orjson.loads(await ws.recv()) == {"result": None, "id": 3}
        stack.hub.publish("ETH-USD")
        wrapped = orjson.loads(await ws.recv())
        assert wrapped["stream"] == "ethusd@depth@100ms" and wrapped["data"]["s"] == "ETHUSD"
        await ws.send('{"method":"UNSUBSCRIBE","params":["btcusd@depth@100ms","ethusd@depth@100ms"],"id":4}')
        assert orjson.loads(await ws.recv()) == {"result": None, "id": 4}
        await _wait(lambda: not +stack.hub.wanted)


async def test_over_five_messages_a_second_closes_with_1008() -> None:
    async with Stack() as stack, connect(f"{stack.ws_base}/ws") as ws:
        for i in range(6):
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}).decode())
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        assert stack.dialect.counters["closed_over_rate"] == 1


async def test_slow_streams_and_partial_books_come_with_the_ticks() -> None:
    async with (
        Stack() as stack,
        connect(f"{stack.ws_base}/ws/btcusd@depth/btcusd@depth5@100ms/btcusd@depth10") as ws,
    ):
        await _wait(lambda: stack.hub.wanted["BTC-USD"] == 1)
        stack.dialect.tick(stack.now_ms)  # a new second: partial 1000 ms (nothing folded yet)
        first = orjson.loads(await ws.recv())
        assert first["lastUpdateId"] == stack.update_id("BTC-USD") and len(first["bids"]) <= 10
        for _ in range(3):
            stack.hub.publish("BTC-USD")
        stack.now_ms += 100
        stack.dialect.tick(stack.now_ms)  # same second: the 100 ms partial only
        partial = orjson.loads(await ws.recv())
        assert partial["lastUpdateId"] == stack.update_id("BTC-USD") and len(partial["bids"]) <= 5
        stack.now_ms += 900
        stack.dialect.tick(stack.now_ms)  # next second: the fold of three windows, then @depth10
        folded = orjson.loads(await ws.recv())
        assert (folded["e"], folded["u"] - folded["U"], folded["u"]) == (
            "depthUpdate",
            2,
            stack.update_id("BTC-USD"),
        )
        assert orjson.loads(await ws.recv())["lastUpdateId"] == folded["u"]


async def test_a_connection_over_the_high_water_mark_is_skipped() -> None:
    async with (
        Stack(BinanceConfig(high_water_bytes=-1)) as stack,
        connect(f"{stack.ws_base}/ws/solusd@depth@100ms"),
    ):
        await _wait(lambda: stack.hub.wanted["SOL-USD"] == 1)
        stack.hub.publish("SOL-USD")
        assert stack.dialect.counters["events_skipped_lagging"] == 1
        assert stack.dialect.counters["frames_out"] == 0


SLOW = BinanceConfig(high_water_bytes=16 << 10, low_water_bytes=4 << 10, slow_close_s=5.0)


async def _stalled(stack: Stack, path: str):
    """A client that stops reading, on sockets small enough for the server's buffer to fill."""
    before = set(stack.dialect.connections)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(stack.ws_base.split(":")[2].split("/")[0])))
    sock.setblocking(False)
    ws = await connect(f"{stack.ws_base}{path}", sock=sock, max_size=None, compression=None)  # as the gateway
    await _wait(lambda: len(stack.dialect.connections) == len(before) + 1)
    (conn,) = stack.dialect.connections - before
    conn.ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ws.transport.pause_reading()
    return ws, conn


async def _publish_until_stale(stack: Stack, conn, pair: str = "BTC-USD") -> None:
    for _ in range(20_000):
        if conn.stale_since is not None:
            return
        stack.hub.publish(pair)
        await asyncio.sleep(0)  # let the transport try to write
    raise AssertionError("the stalled connection never went stale")


async def test_a_stalled_client_is_conflated_then_healed_with_its_partial_book_and_a_visible_jump() -> None:
    async with Stack(SLOW) as stack:
        ws, conn = await _stalled(stack, "/stream?streams=btcusd@depth@100ms/btcusd@depth5")
        await _publish_until_stale(stack, conn)
        skipped = stack.dialect.counters["events_skipped_lagging"]
        for _ in range(50):  # stale: nothing more is queued for it
            stack.hub.publish("BTC-USD")
        assert stack.dialect.counters["events_skipped_lagging"] == skipped + 50
        assert conn.buffered() <= SLOW.high_water_bytes + 4096  # the mark plus one event at most
        ws.transport.resume_reading()
        frames = []

        async def read() -> None:
            async for frame in ws:
                frames.append(orjson.loads(frame))

        reader = asyncio.create_task(read())
        try:
            await _wait(lambda: conn.stale_since is None or stack.dialect.tick(stack.now_ms))
            assert stack.dialect.counters["slow_healed"] == 1
            stack.hub.publish("BTC-USD")
            now = stack.update_id("BTC-USD")
            await _wait(
                lambda: (
                    frames and frames[-1]["stream"] == "btcusd@depth@100ms" and frames[-1]["data"]["u"] == now
                )
            )
        finally:
            reader.cancel()
        diffs = [(i, f["data"]) for i, f in enumerate(frames) if f["stream"] == "btcusd@depth@100ms"]
        jumps = [(i, e) for (_, p), (i, e) in itertools.pairwise(diffs) if e["U"] != p["u"] + 1]
        assert len(jumps) == 1 and jumps[0][1]["u"] == now  # the first event after healing shows the gap
        partials = [f["data"] for f in frames[: jumps[0][0]] if f["stream"] == "btcusd@depth5"]
        assert partials[-1]["lastUpdateId"] == now - 1  # the healed client's book, sent at once
        await ws.close()


async def test_a_client_stale_too_long_is_closed_with_4008_and_forgotten() -> None:
    async with Stack(SLOW) as stack:
        ws, conn = await _stalled(stack, "/ws/btcusd@depth@100ms")
        await _publish_until_stale(stack, conn)
        stack.mono += SLOW.slow_close_s - 0.1
        stack.dialect.tick(stack.now_ms)
        assert stack.dialect.counters["closed_slow"] == 0
        stack.mono += 0.2
        stack.dialect.tick(stack.now_ms)
        assert stack.dialect.counters["closed_slow"] == 1 and conn.ws.protocol.close_sent.code == 4008
        await _wait(lambda: not stack.dialect.connections and not +stack.hub.wanted, timeout=T)
        assert not stack.dialect.slow.stale
        ws.transport.abort()


async def test_a_client_that_sends_but_never_reads_is_closed_at_twice_the_mark() -> None:
    cfg = BinanceConfig(high_water_bytes=16 << 10, low_water_bytes=4 << 10, msg_rate=1e6)
    async with Stack(cfg) as stack:
        ws, conn = await _stalled(stack, "/ws")
        names = [
            f"{symbol}@depth{levels}{speed}"
            for symbol in ("btcusd", "ethusd", "solusd")
            for levels in ("", "5", "10", "20")
            for speed in ("", "@100ms", "@1000ms")
        ]
        subscribe = {"method": "SUBSCRIBE", "params": names, "id": 1}  # answers of about 900 bytes
        await ws.send(orjson.dumps(subscribe).decode())
        request = orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}).decode()
        for _ in range(1000):  # well past twice the mark, if nothing stopped it
            await ws.send(request)
            await asyncio.sleep(0)  # let the server read and answer
            assert conn.buffered() <= 2 * cfg.high_water_bytes
            if stack.dialect.counters["closed_over_buffer"]:
                break
        await _wait(lambda: stack.dialect.counters["closed_over_buffer"] == 1)
        assert conn.ws.protocol.close_sent.code == 4008
        await _wait(lambda: not stack.dialect.connections, timeout=T)
        ws.transport.abort()


async def test_binance_connections_get_keepalive_and_room_for_a_large_subscribe() -> None:
    async with Stack() as stack, connect(f"{stack.ws_base}/ws") as ws:
        (conn,) = [c.ws for c in stack.dialect.connections] or [None]
        assert (conn.ping_interval, conn.ping_timeout) == (20.0, 60.0)
        params = ["btcusd@depth@100ms"] * 1500  # about 30 KB, above the server's 4 KiB
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": params, "id": 1}).decode())
        assert orjson.loads(await ws.recv()) == {"result": None, "id": 1}


async def test_close_all_closes_with_going_away() -> None:
    async with Stack() as stack, connect(f"{stack.ws_base}/stream?streams=btcusd@depth") as ws:
        await _wait(lambda: len(stack.dialect.connections) == 1)
        await stack.dialect.close_all()
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001


async def test_an_unhashable_stream_name_is_answered_with_code_2_and_the_connection_kept() -> None:
    async with Stack() as stack, connect(f"{stack.ws_base}/ws") as ws:
        await ws.send('{"method":"SUBSCRIBE","params":[["x"]],"id":1}')
        assert orjson.loads(await ws.recv()) == {
            "error": {"code": 2, "msg": "Invalid request: invalid stream"},
            "id": 1,
        }
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":2}')
        assert orjson.loads(await ws.recv()) == {"result": [], "id": 2}


async def test_ccxt_style_connection_index_path_opens_and_subscribes() -> None:
    async with Stack() as stack, connect(f"{stack.ws_base}/ws/0") as ws:
        await ws.send('{"method":"SUBSCRIBE","params":["btcusd@depth@100ms"],"id":1}')
        assert orjson.loads(await ws.recv()) == {"result": None, "id": 1}
        stack.hub.publish("BTC-USD")
        assert orjson.loads(await ws.recv())["U"] == stack.update_id("BTC-USD")
