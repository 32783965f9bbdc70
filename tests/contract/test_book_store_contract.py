"""One contract for every implementation of the gateway's stream store (gateway.store.BookStore).

The same tests run against the in-memory store, a single real Redis (Valkey) and a real
3-primary Redis Cluster, as centrifuge runs one suite against its memory and Redis brokers.
md_service's own window writer (RedisStore: the real Lua scripts, on a single server or on
the cluster) writes the streams for the Redis implementations; the memory one is written
with the same windows. A behaviour the hub relies on that one implementation lacks fails here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field

import pytest

from gateway.cluster_link import ClusterLink
from gateway.core.counters import Counters
from gateway.memory_store import MemoryStreams
from gateway.redis_link import RedisLink
from gateway.store import BookStore
from md_service.pair_stream import PairStream, WindowOutput
from md_service.redis_store import RedisStore
from md_service.window_script import PartitionWrite
from mdcore.codec import decode_delta
from mdcore.instruments import NAMED_PAIRS
from mdcore.messages import StreamPosition
from mdcore.partitioning import DEFAULT_PARTITIONS
from mdcore.redis_layout import RedisLayout

pytestmark = pytest.mark.integration

WAIT_S = 10.0
HISTORY = 50
PAIR = "BTC-USD"


class Writer:
    """md_service's side: windows of real PairStreams, written through one implementation."""

    def __init__(self, put: Callable[[list[WindowOutput]], None], layout: RedisLayout) -> None:
        self._put = put
        self.layout = layout
        self.streams: dict[str, PairStream] = {}
        self.written: dict[str, list[bytes]] = {}

    def window(self, pairs: Collection[str], xseq: int) -> None:
        outs = []
        for pair in pairs:
            stream = self.streams.get(pair)
            if stream is None:
                stream = self.streams[pair] = PairStream(pair, "e1", partition=self.layout.partition(pair))
            stream.apply(xseq, xseq, [("b", 100 + xseq % 7, xseq), ("a", 200 + xseq % 5, 1 + xseq % 3)])
            outs.append(stream.close_window(xseq, 10, False))
        self._put(outs)
        for pair, out in zip(pairs, outs, strict=True):
            self.streams[pair].confirm(out)
            if out.delta:
                self.written.setdefault(pair, []).append(out.delta)


@dataclass
class Received:
    messages: dict[str, list[bytes]] = field(default_factory=dict)
    resubscribed: list[set[str]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def on_message(self, pair: str, raw: bytes) -> None:
        self.messages.setdefault(pair, []).append(raw)
        self.arrived.set()

    async def on_resubscribed(self, pairs: Collection[str]) -> None:
        self.resubscribed.append(set(pairs))

    async def wait_for(self, pair: str, count: int) -> None:
        async with asyncio.timeout(WAIT_S):
            while len(self.messages.get(pair, ())) < count:
                self.arrived.clear()
                await self.arrived.wait()


@dataclass
class Backend:
    name: str
    store: BookStore
    writer: Writer
    received: Received


def redis_writer(url: str, cluster: tuple[str, ...], layout: RedisLayout) -> tuple[Writer, RedisStore]:
    md = RedisStore(url, layout, "events", HISTORY, cluster=cluster)
    token = f"contract/{uuid.uuid4().hex[:8]}"
    md.claim(token, list(range(layout.partitions)))

    def put(outs: list[WindowOutput]) -> None:
        parts = sorted({o.partition for o in outs})
        result = md.write_window([PartitionWrite(p, token, None) for p in parts], outs)
        assert result.clean, result

    return Writer(put, layout), md


@pytest.fixture(params=["memory", "redis", "cluster"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    layout = RedisLayout(f"contract{uuid.uuid4().hex[:8]}", DEFAULT_PARTITIONS)
    received = Received()
    md: RedisStore | None = None
    store: BookStore
    if request.param == "memory":
        streams = MemoryStreams(history=HISTORY)

        def put(outs: list[WindowOutput]) -> None:
            for o in outs:
                streams.write(o.pair, o.epoch, o.seq, o.xseq, o.delta, o.snapshot)

        writer = Writer(put, layout)
        store = streams.connect(None, None, received.on_message, received.on_resubscribed)
    elif request.param == "redis":
        url = request.getfixturevalue("infra").redis_url
        writer, md = redis_writer(url, (), layout)
        store = RedisLink(url, layout, Counters(), received.on_message, received.on_resubscribed)
    else:
        cluster = request.getfixturevalue("redis_cluster")
        seeds = tuple(cluster.seeds.split(","))
        writer, md = redis_writer(cluster.url, seeds, layout)
        store = ClusterLink(
            cluster.url, seeds, layout, Counters(), received.on_message, received.on_resubscribed
        )
    task = asyncio.get_running_loop().create_task(store.run())
    try:
        async with asyncio.timeout(WAIT_S):
            while not store.up:
                await asyncio.sleep(0.02)
        yield Backend(request.param, store, writer, received)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.close()
        if md is not None:
            md.close()


async def test_a_subscribed_pair_receives_every_delta_in_order(backend: Backend) -> None:
    await backend.store.subscribe([PAIR])
    assert backend.store.wanted == frozenset({PAIR})
    for xseq in range(1, 6):
        backend.writer.window([PAIR], xseq)
    await backend.received.wait_for(PAIR, 5)
    assert backend.received.messages[PAIR] == backend.writer.written[PAIR]
    assert [decode_delta(raw).seq for raw in backend.received.messages[PAIR]] == [1, 2, 3, 4, 5]


async def test_pairs_on_every_partition_flow_and_only_subscribed_ones(backend: Backend) -> None:
    pairs = list(NAMED_PAIRS)
    layout = backend.writer.layout
    assert len({layout.partition(p) for p in pairs}) >= 4  # spread over partitions (and cluster nodes)
    wanted, unwanted = pairs[:-1], pairs[-1]
    await backend.store.subscribe(wanted)
    for xseq in range(1, 4):
        backend.writer.window(pairs, xseq)
    for pair in wanted:
        await backend.received.wait_for(pair, 3)
        assert backend.received.messages[pair] == backend.writer.written[pair]
    assert unwanted not in backend.received.messages
    backend.store.unsubscribe(wanted[0])
    assert wanted[0] not in backend.store.wanted
    backend.writer.window(pairs, 4)
    for pair in wanted[1:]:
        await backend.received.wait_for(pair, 4)
    assert len(backend.received.messages[wanted[0]]) == 3  # nothing after the unsubscribe


async def test_a_book_is_read_whole_at_the_last_seq(backend: Backend) -> None:
    assert await backend.store.load_book(PAIR) is None  # no stream yet
    for xseq in range(1, 13):  # past a snapshot (every 10 seqs) and beyond it
        backend.writer.window([PAIR], xseq)
    local = await backend.store.load_book(PAIR)
    assert local is not None and (local.epoch, local.seq) == ("e1", 12)
    assert local.book == backend.writer.streams[PAIR].book
    assert await backend.store.read_positions([PAIR, "ETH-USD"]) == {
        PAIR: StreamPosition("e1", 12),
        "ETH-USD": None,
    }
    assert PAIR in await backend.store.known_pairs()


async def test_history_answers_after_a_seq_or_says_it_cannot(backend: Backend) -> None:
    for xseq in range(1, 9):
        backend.writer.window([PAIR], xseq)
    written = backend.writer.written[PAIR]
    assert await backend.store.read_history(PAIR, "e1", 5) == [
        (6, written[5]),
        (7, written[6]),
        (8, written[7]),
    ]
    assert await backend.store.read_history(PAIR, "e1", 8) == []  # up to date
    assert await backend.store.read_history(PAIR, "other-epoch", 5) is None
    assert await backend.store.read_history("ETH-USD", "e1", 0) is None  # no stream
    backend.store.bound_reads(4, 1.0, 2)
    assert await backend.store.read_history(PAIR, "e1", 5) is None  # further behind than a read may fetch


async def test_history_that_no_longer_reaches_back_is_refused(backend: Backend) -> None:
    last = HISTORY * 6  # Redis trims streams roughly (whole nodes of 100 entries): go well past
    for xseq in range(1, last + 1):
        backend.writer.window([PAIR], xseq)
    assert await backend.store.read_history(PAIR, "e1", 1) is None  # trimmed away
    recent = await backend.store.read_history(PAIR, "e1", last - 3)
    assert recent is not None and [seq for seq, _ in recent] == [last - 2, last - 1, last]


async def test_health_says_what_is_connected(backend: Backend) -> None:
    await backend.store.subscribe([PAIR])
    health = backend.store.health()
    assert health["mode"] in {"memory", "single", "cluster"}
    assert health["nodes"] and all(node["up"] for node in health["nodes"].values())
    assert backend.store.down_since is None
