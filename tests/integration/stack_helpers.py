"""Helpers for tests that run the real tiers: bounded waits, the source of truth, Redis reads."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis
from confluent_kafka import Consumer, TopicPartition

from bookcast.processes import tier_env
from feed_simulator.topic import ensure_topic
from mdcore.book import ASK, BID, OrderBook
from mdcore.events import decode_event
from mdcore.instruments import instrument
from mdcore.local_book import LocalBook
from mdcore.redis_layout import READ_BOOK_LUA, RedisLayout, StoredState, rebuild_book

TIMEOUT = 60.0  # one bound for every wait on a real condition in these tests


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
        topic=topic, redis_prefix=prefix, md_group=unique("md"), pairs=",".join(pairs), **settings,
    )  # fmt: skip
    ensure_topic(infra.kafka_bootstrap, topic, partitions)  # type: ignore[attr-defined]
    return env, topic, prefix


@dataclass
class SourceBook:
    """A pair's book rebuilt straight from the exchange events in Kafka: the truth."""

    book: OrderBook
    last_xseq: int
    events: int


def source_books(bootstrap: str, topic: str, partitions: int, expected_events: int) -> dict[str, SourceBook]:
    """Read every event of ``topic`` (exactly ``expected_events``) and apply them in order."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": unique("reader"), "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    books: dict[str, SourceBook] = {}
    seen = 0
    deadline = time.monotonic() + TIMEOUT
    try:
        while seen < expected_events:
            if time.monotonic() > deadline:
                raise AssertionError(f"read {seen} of {expected_events} events from {topic}")
            for msg in consumer.consume(num_messages=5000, timeout=0.5):
                if msg.error():
                    continue
                seen += 1
                event = decode_event(msg.value())
                src = books.setdefault(event.pair, SourceBook(OrderBook(), 0, 0))
                assert event.xseq == src.last_xseq + 1, (
                    f"{event.pair}: xseq {event.xseq} after {src.last_xseq}"
                )
                for side, price, qty in event.changes:
                    src.book.set_level(side, price, qty)
                src.last_xseq = event.xseq
                src.events += 1
    finally:
        consumer.close()
    return books


def stored_book(redis_url: str, prefix: str, pair: str) -> tuple[StoredState, LocalBook] | None:
    client = redis.Redis.from_url(redis_url)
    try:
        layout = RedisLayout(prefix)
        reply = client.eval(READ_BOOK_LUA, 3, *layout.book_keys(pair))
        return rebuild_book(pair, reply)
    finally:
        client.close()


def stored_state(redis_url: str, prefix: str, pair: str) -> dict[str, str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return client.hgetall(RedisLayout(prefix).state_key(pair))
    finally:
        client.close()


def wire_book(book: OrderBook, pair: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    inst = instrument(pair)
    fmt = [(inst.format_price(p), inst.format_qty(q)) for p, q in book.iter_side(BID)]
    return fmt, [(inst.format_price(p), inst.format_qty(q)) for p, q in book.iter_side(ASK)]
