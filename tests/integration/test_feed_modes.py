"""The feed's other modes against the embedded Kafka: several processes, faults, record and replay.

Each test reads the topic back and checks it against the report, so what is claimed is
what a consumer gets.
"""

import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from feed_simulator.config import FeedConfig
from feed_simulator.faults import FaultRates
from feed_simulator.market import MarketParams, build_markets
from feed_simulator.producer import run_feed
from feed_simulator.replay import restamp
from feed_simulator.topic import ensure_topic
from mdcore.book import OrderBook
from mdcore.errors import InvalidEventError
from mdcore.events import decode_event
from mdcore.instruments import default_pairs

pytestmark = pytest.mark.integration

PARTITIONS = 4
PARAMS = MarketParams(max_levels=60)


def topic_name(what):
    return f"test-feed-{what}-{uuid.uuid4().hex[:10]}"


def read_topic(bootstrap, topic, expected, timeout=30.0):
    """Every (partition, key, value) of ``topic`` from the beginning, in partition order."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        messages = []
        deadline = time.monotonic() + timeout
        while len(messages) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=5000, timeout=0.5):
                assert msg.error() is None, msg.error()
                messages.append((msg.partition(), msg.key(), msg.value()))
        assert len(messages) == expected, f"read {len(messages)} of {expected} messages"
        for msg in consumer.consume(num_messages=10, timeout=0.5):  # and nothing more
            raise AssertionError(f"an unexpected extra message: {msg.value()[:80]!r}")
        return messages
    finally:
        consumer.close()


def config(infra, topic, **overrides):
    values = {"kafka_bootstrap": infra.kafka_bootstrap, "topic": topic, "partitions": PARTITIONS, "seed": 77}
    return FeedConfig(**{**values, **overrides})


def test_several_processes_keep_every_pair_in_order(infra):
    pairs = tuple(default_pairs(5))
    topic = topic_name("parallel")
    cfg = config(infra, topic, pairs=pairs, rate=50_000.0, scenario="hot-pair", processes=2)
    report = run_feed(cfg, max_events=4_000, params=PARAMS)
    assert (report.processes, report.delivered_events, report.failed_events) == (2, 4_000, 0)
    messages = read_topic(infra.kafka_bootstrap, topic, 4_000)
    xseqs = defaultdict(list)
    books = defaultdict(OrderBook)
    changes = 0
    for _, key, value in messages:
        event = decode_event(value)
        assert key == event.pair.encode()
        xseqs[event.pair].append(event.xseq)
        changes += len(event.changes)
        for side, price, qty in event.changes:
            books[event.pair].set_level(side, price, qty)
    assert changes == report.delivered_changes
    assert len(xseqs[pairs[0]]) == 2_000  # the hot pair: half of everything, in a process of its own
    for pair, seen in xseqs.items():
        assert seen == list(range(1, len(seen) + 1)), f"{pair} out of order"
    for market in build_markets(pairs, 77, PARAMS):  # each pair's events are the seed's events
        for _ in xseqs[market.pair]:
            market.next_changes()
        assert books[market.pair] == market.book


def test_injected_faults_reach_the_topic_as_counted(infra):
    pairs = ("BTC-USD", "ETH-USD", "SYN005-USD")
    topic = topic_name("faults")
    faults = FaultRates(duplicate=0.03, redelivery=0.03, malformed=0.03)
    report = run_feed(
        config(infra, topic, pairs=pairs, rate=1e6, faults=faults), max_events=3_000, params=PARAMS
    )
    injected = {k: v for k, v in report.injected.items() if ":" not in k}
    total = 3_000 + sum(injected.values())
    assert report.injected_delivered == sum(injected.values())
    seen = Counter()
    last = defaultdict(int)
    for _, _, value in read_topic(infra.kafka_bootstrap, topic, total):
        try:
            event = decode_event(value)
        except InvalidEventError:
            seen["malformed"] += 1
            continue
        if event.xseq <= last[event.pair]:
            seen["duplicate" if event.xseq == last[event.pair] else "redelivery"] += 1
        else:
            assert event.xseq == last[event.pair] + 1
            last[event.pair] = event.xseq
    assert dict(seen) == injected
    assert min(seen.values()) > 30


def test_a_replayed_recording_is_the_same_stream(infra, tmp_path):
    pairs = ("BTC-USD", "DOGE-USD", "SYN001-USD")
    recording = tmp_path / "run.rec.gz"
    first, second = topic_name("recorded"), topic_name("replayed")
    faults = FaultRates(duplicate=0.01, malformed=0.01)
    recorded = run_feed(
        config(infra, first, pairs=pairs, rate=1e6, scenario="bursty", faults=faults, record=str(recording)),
        max_events=2_000,
        params=PARAMS,
    )
    replayed = run_feed(config(infra, second, replay=str(recording), speed=0.0))
    assert (replayed.mode, replayed.produced_events, replayed.delivered_events) == ("replay", 2_000, 2_000)
    assert replayed.delivered_changes == recorded.delivered_changes
    total = 2_000 + recorded.injected_delivered
    original = read_topic(infra.kafka_bootstrap, first, total)
    again = read_topic(infra.kafka_bootstrap, second, total)
    assert sorted((p, k, restamp(v, 0)) for p, k, v in original) == sorted(
        (p, k, restamp(v, 0)) for p, k, v in again
    )
    per_partition = defaultdict(list)
    for partition, key, value in original:
        per_partition[partition].append((key, restamp(value, 0)))
    replay_order = defaultdict(list)
    for partition, key, value in again:
        replay_order[partition].append((key, restamp(value, 0)))
    assert per_partition == replay_order  # the same order on every partition


def test_the_command_reports_what_it_delivered_as_json(infra, tmp_path):
    topic = topic_name("cli")
    ensure_topic(infra.kafka_bootstrap, topic, PARTITIONS)
    report_path = tmp_path / "feed.json"
    command = [
        sys.executable, "-m", "feed_simulator", "--bootstrap", infra.kafka_bootstrap, "--topic", topic,
        "--pairs", "3", "--rate", "3000", "--duration", "1.5", "--scenario", "mixed", "--seed", "5",
        "--max-levels", "50", "--progress-interval", "0.5", "--json", str(report_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=40)
    assert done.returncode == 0, done.stderr
    assert "level changes/s delivered over the last" in done.stderr  # progress while running
    report = orjson.loads(report_path.read_bytes())
    assert report["scenario"] == "mixed" and report["seed"] == 5
    assert report["delivered_events"] > 1_000
    assert report["changes_per_s"] > 0 and report["failed_events"] == 0
    messages = read_topic(infra.kafka_bootstrap, topic, report["delivered_events"])
    assert sum(len(decode_event(v).changes) for _, _, v in messages) == report["delivered_changes"]
