"""The feed into the embedded Kafka: what a consumer reads back is what the report claims."""

import logging
import time
import uuid
from collections import defaultdict

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from feed_simulator.config import FeedConfig
from feed_simulator.market import MarketParams, build_markets
from feed_simulator.producer import run_feed
from feed_simulator.topic import ensure_topic
from mdcore.book import OrderBook
from mdcore.events import decode_event

pytestmark = pytest.mark.integration

PAIRS = ("BTC-USD", "DOGE-USD", "SYN003-USD")
PARTITIONS = 4
CONSUME_TIMEOUT = 30.0


def unique_topic():
    return f"test-feed-{uuid.uuid4().hex[:12]}"


def read_all(bootstrap, topic, partitions, expected):
    """Every message of ``topic`` from the beginning (assign, no group join), in partition order."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
        consumer.assign(tps)
        messages = []
        deadline = time.monotonic() + CONSUME_TIMEOUT
        while len(messages) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                assert msg.error() is None, msg.error()
                messages.append(msg)
        # Nothing beyond what we read: the end offsets add up to the same count. They are the
        # ones the fetch responses carried (cached=True): Tansu 0.6 answers a ListOffsets
        # "latest" query with the base offset of the last batch, not the end of the log.
        stored = 0
        for tp in tps:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), cached=True)
            stored += high - low
        return messages, stored
    finally:
        consumer.close()


def test_feed_events_arrive_keyed_contiguous_and_as_reported(infra):
    topic = unique_topic()
    params = MarketParams(max_levels=60)
    cfg = FeedConfig(
        kafka_bootstrap=infra.kafka_bootstrap,
        topic=topic,
        partitions=PARTITIONS,
        pairs=PAIRS,
        rate=20_000.0,
        seed=1234,
        max_levels=params.max_levels,
        progress_interval=1.0,
    )
    report = run_feed(cfg, max_events=3_000, params=params)
    assert report.produced_events == report.delivered_events == 3_000
    assert (report.failed_events, report.undelivered_events) == (0, 0)
    assert report.events_per_s > 0

    messages, stored = read_all(infra.kafka_bootstrap, topic, PARTITIONS, report.delivered_events)
    assert len(messages) == stored == report.delivered_events

    xseqs = defaultdict(list)
    books = defaultdict(OrderBook)
    partition_of = {}
    changes = 0
    for msg in messages:
        event = decode_event(msg.value())
        assert msg.key() == event.pair.encode()
        assert partition_of.setdefault(event.pair, msg.partition()) == msg.partition()
        xseqs[event.pair].append(event.xseq)
        changes += len(event.changes)
        for side, price, qty in event.changes:
            books[event.pair].set_level(side, price, qty)
            assert not books[event.pair].is_crossed()
    assert changes == report.delivered_changes
    assert sorted(xseqs) == sorted(PAIRS)
    for pair in PAIRS:
        assert xseqs[pair] == list(range(1, 1_001))  # round robin over 3 pairs, xseq 1..n in order

    # The books rebuilt from the topic are the simulator's books for that seed.
    for market in build_markets(PAIRS, cfg.seed, params):
        for _ in range(1_000):
            market.next_changes()
        assert books[market.pair] == market.book


def test_ensure_topic_creates_once_and_keeps_an_existing_topic(infra, caplog):
    topic = unique_topic()
    assert ensure_topic(infra.kafka_bootstrap, topic, 3) == 3
    assert ensure_topic(infra.kafka_bootstrap, topic, 3) == 3
    with caplog.at_level(logging.WARNING, logger="feed_simulator.topic"):
        assert ensure_topic(infra.kafka_bootstrap, topic, 6) == 3
    assert "fewer than the 6 asked for" in caplog.text
