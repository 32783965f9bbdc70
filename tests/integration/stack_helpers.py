"""Helpers for tests that run the real tiers: bounded waits, the source of truth, Redis reads.

Also what several md_service tests share (test_md_recovery.py, test_md_kafka_down.py): a
deterministic exchange and its :class:`Feeder`, the :class:`ChannelRecorder` of what
md_service published, and the checks on those streams. They live here, not in one test
module the others import, so that no test module depends on another.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import redis
from confluent_kafka import KafkaError, Message, Producer

from bookcast.chaos.source import SourceBook, read_source
from bookcast.processes import tier_env
from feed_simulator.topic import ensure_topic
from mdcore.book import OrderBook
from mdcore.codec import decode_delta
from mdcore.events import encode_event
from mdcore.instruments import instrument
from mdcore.local_book import LocalBook
from mdcore.messages import Snapshot
from mdcore.partitioning import DEFAULT_PARTITIONS
from mdcore.redis_layout import READ_BOOK_LUA, RedisLayout, StoredState, rebuild_book
from mdruntime.redis_connect import redis_client

TIMEOUT = 60.0  # one bound for every wait on a real condition in these tests
EXCHANGE_PAIRS = ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD", "DOT-USD")  # Exchange's default


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


async def wait_until_async(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = TIMEOUT, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def isolated_stack(
    infra: object, name: str, pairs: tuple[str, ...], partitions: int, **settings: str
) -> tuple[dict[str, str], str, str]:
    """The tiers' environment for one test: its own topic, Redis prefix and md group.

    The topic is created first, with ``partitions``: Tansu would invent it with 4 partitions
    the moment md_service asked for it. Returns ``(env, topic, prefix)``.
    """
    topic, prefix = unique(f"{name}-deltas"), unique(name)
    env = tier_env(
        infra.kafka_bootstrap, infra.redis_url,  # type: ignore[attr-defined]
        topic=topic, redis_prefix=prefix, md_group=unique("md"), pairs=",".join(pairs),
        partitions=str(partitions), **settings,
    )  # fmt: skip
    ensure_topic(infra.kafka_bootstrap, topic, partitions)  # type: ignore[attr-defined]
    return env, topic, prefix


def source_books(bootstrap: str, topic: str, partitions: int, expected_events: int) -> dict[str, SourceBook]:
    """Read every event of ``topic`` (exactly ``expected_events``) and apply them in order."""
    return read_source(bootstrap, topic, partitions, expected_events=expected_events, timeout=TIMEOUT).books


def stored_book(
    redis_url: str, prefix: str, pair: str, partitions: int = DEFAULT_PARTITIONS
) -> tuple[StoredState, LocalBook] | None:
    """The pair's book as a reader rebuilds it, from one Redis or a cluster (a node's URL)."""
    client = redis_client(redis_url)
    try:
        read = client.register_script(READ_BOOK_LUA)
        return rebuild_book(pair, read(keys=RedisLayout(prefix, partitions).book_keys(pair)))
    finally:
        client.close()


def stored_state(
    redis_url: str, prefix: str, pair: str, partitions: int = DEFAULT_PARTITIONS
) -> dict[str, str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return client.hgetall(RedisLayout(prefix, partitions).state_key(pair))
    finally:
        client.close()


# --- the exchange -------------------------------------------------------------------


class Exchange:
    """A small deterministic exchange: per pair, levels set and removed around a fixed mid."""

    def __init__(self, seed: int, pairs: tuple[str, ...] = EXCHANGE_PAIRS) -> None:
        self.rng = random.Random(seed)
        self.pairs = pairs
        self.xseq = dict.fromkeys(pairs, 0)
        self.turn = 0

    def next(self) -> tuple[str, bytes]:
        pair = self.pairs[self.turn % len(self.pairs)]
        self.turn += 1
        self.xseq[pair] += 1
        inst, rng = instrument(pair), self.rng
        mid = 10**inst.price_decimals * 50
        changes = []
        for _ in range(rng.randint(1, 4)):
            side = rng.choice("ba")
            price = mid - rng.randint(1, 120) if side == "b" else mid + rng.randint(1, 120)
            qty = 0 if rng.random() < 0.25 else rng.randint(1, 9) * 10**inst.qty_decimals
            changes.append((side, inst.format_price(price), inst.format_qty(qty)))
        return pair, encode_event(pair, self.xseq[pair], time.time_ns(), changes)


class Feeder(threading.Thread):
    """Produces ``count`` events at ``rate``/s (key = pair), then flushes; counts confirmations."""

    def __init__(
        self, bootstrap: str, topic: str, count: int, rate: float, exchange: Exchange | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.count, self.rate = bootstrap, topic, count, rate
        self.exchange = exchange or Exchange(seed=7)
        self.delivered = 0
        self.failed = 0
        self.stop = threading.Event()

    def _done(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1

    def run(self) -> None:
        producer = Producer(
            {"bootstrap.servers": self.bootstrap, "linger.ms": 5, "enable.idempotence": True,
             "compression.type": "lz4"}
        )  # fmt: skip
        start = time.monotonic()
        for i in range(self.count):
            ahead = start + i / self.rate - time.monotonic()
            if ahead > 0.005 and self.stop.wait(ahead):
                break
            pair, value = self.exchange.next()
            producer.produce(self.topic, value, pair.encode(), on_delivery=self._done)
            producer.poll(0)
        producer.flush(30)

    def produced(self, pair: str) -> int:
        return self.exchange.xseq[pair]


# --- what md_service published ------------------------------------------------------------


class ChannelRecorder(threading.Thread):
    """Every message on the pairs' delta channels, in order, as (pair, epoch, seq, bytes)."""

    def __init__(
        self, redis_url: str, prefix: str, pairs: Sequence[str], partitions: int = DEFAULT_PARTITIONS
    ) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        layout = RedisLayout(prefix, partitions)
        self.pubsub.ssubscribe(*(layout.delta_channel(p) for p in pairs))
        self.pubsub.get_message(timeout=5.0)
        self.messages: list[tuple[str, str, int, bytes]] = []
        self.arrivals: list[float] = []  # time.monotonic() of each message, same order as ``messages``
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                msg = self.pubsub.get_message(timeout=0.1)
            except redis.ConnectionError:  # a Redis restart: redis-py reconnects and resubscribes
                time.sleep(0.1)
                continue
            if msg is not None and msg["type"] == "smessage":
                arrived = time.monotonic()
                d = decode_delta(msg["data"])
                self.arrivals.append(arrived)  # first: a reader pairing the two lists zips by the shorter
                self.messages.append((d.pair, d.epoch, d.seq, msg["data"]))

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.pubsub.close()
        self.client.close()

    def times(self, pair: str) -> list[float]:
        """When each of the pair's messages arrived (monotonic), in order."""
        return [t for t, (p, _, _, _) in zip(self.arrivals, list(self.messages), strict=False) if p == pair]

    def silence(self, pair: str, start: float, end: float) -> float:
        """The pair's longest time without a message that overlaps ``[start, end]`` (monotonic).

        Counted from its last message before ``start`` (or ``start``) to its next message (or
        ``end`` if none came): how long a client of the pair saw nothing around a fault.
        """
        before = start
        longest = 0.0
        for t in self.times(pair):
            if t <= start:
                before = t
                continue
            if before >= end:
                break
            longest = max(longest, t - before)
            before = t
        if before < end:
            longest = max(longest, end - before)
        return longest

    def streams(self, pair: str) -> list[tuple[str, list[int], list[bytes]]]:
        """The pair's epochs in publication order, each with its seqs and delta bytes."""
        out: list[tuple[str, list[int], list[bytes]]] = []
        for p, epoch, seq, raw in list(self.messages):
            if p != pair:
                continue
            if not out or out[-1][0] != epoch:
                out.append((epoch, [], []))
            out[-1][1].append(seq)
            out[-1][2].append(raw)
        return out


def rebuild(pair: str, epoch: str, deltas: list[bytes]) -> LocalBook:
    """Apply a whole epoch's deltas (checksums verified) from the empty book before seq 1."""
    book = LocalBook(pair)
    book.load_snapshot(Snapshot(pair, epoch, 0, 0, [], [], 0))
    for raw in deltas:
        assert book.apply_delta(decode_delta(raw))
    return book


def assert_one_stream_per_epoch(
    recorder: ChannelRecorder, pair: str, epochs: int = 1
) -> tuple[str, list[bytes]]:
    """Seqs 1..N with none missing or repeated in each epoch; returns the last epoch and its deltas."""
    streams = recorder.streams(pair)
    assert len(streams) == epochs, f"{pair}: epochs {[e for e, _, _ in streams]}"
    for epoch, seqs, _ in streams:
        assert seqs == list(range(1, len(seqs) + 1)), f"{pair} epoch {epoch}: seqs {seqs}"
    epoch, _, raws = streams[-1]
    return epoch, raws


def assert_streams_rebuild(
    recorder: ChannelRecorder, books: dict[str, OrderBook]
) -> dict[str, tuple[str, list[bytes]]]:
    """Each pair's published stream is whole (:func:`assert_one_stream_per_epoch`) and its deltas,
    applied from the empty book, give ``books[pair]``; returns each pair's epoch and deltas."""
    streams = {}
    for pair, book in books.items():
        epoch, raws = assert_one_stream_per_epoch(recorder, pair)
        assert rebuild(pair, epoch, raws).book == book
        streams[pair] = (epoch, raws)
    return streams
