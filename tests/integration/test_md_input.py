"""Bad, duplicated and reordered input through the real md_service process.

Every kind of malformed message (a garbled ``xseq``, numbers too long to write or outside
the price band included) is produced between valid events: md_service must keep running,
count each kind, send each to the dead-letter topic with where it came from, skip
duplicates, skip a late (reordered) event while counting the exchange's gap, and store
exactly the book the valid events define.
"""

from __future__ import annotations

import time

import orjson
import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from bookcast.processes import TierProcess, tier_env
from feed_simulator.topic import ensure_topic
from mdcore.book import OrderBook
from mdcore.events import encode_event
from mdcore.status_bus import decode_status, status_key
from tests.integration.stack_helpers import stored_book, stored_state, unique, wait_until

pytestmark = pytest.mark.integration

PAIR = "BTC-USD"
WAIT = 30.0


def valid(xseq: int, qty: str, price: str = "100.00") -> bytes:
    return encode_event(PAIR, xseq, 1_000 + xseq, [("b", price, qty), ("a", "101.00", qty)])


def poison() -> list[tuple[bytes | None, bytes, str]]:
    """(value, key, kind) of every malformed message md_service must survive."""
    good = {"pair": PAIR, "xseq": 50, "xts": 1, "changes": [["b", "100.00", "1"]]}

    def with_(**fields) -> bytes:
        return orjson.dumps({**good, **fields})

    key = PAIR.encode()
    return [
        (b"\x00not json{", key, "not_json"),
        (None, key, "empty"),
        (b"[1, 2]", key, "not_object"),
        (orjson.dumps({"pair": PAIR, "xseq": 50, "xts": 1}), key, "missing_field"),
        (with_(changes=[["x", "100.00", "1"]]), key, "bad_side"),
        (with_(changes=[["b", "100.00", "-1"]]), key, "bad_number"),  # negative qty
        (with_(changes=[["b", "1e2", "1"]]), key, "bad_number"),  # non-numeric price
        (with_(changes=[["b", "100.001", "1"]]), key, "bad_number"),  # off the tick grid
        (with_(changes=[["b", "100.00", "0.000001"]]), key, "bad_number"),  # off the lot grid
        (with_(pair="NOPE-USD"), b"NOPE-USD", "unknown_pair"),
        (with_(xseq=-4), key, "bad_xseq"),
        (with_(), b"ETH-USD", "wrong_key"),  # a valid event under another pair's key
        # Poison that used to get through: a garbled xseq froze the pair for good; 64 nines
        # were written 70 characters long, past what any reader parses; a price far off.
        (with_(xseq=2**64 - 1), key, "xseq_jump"),
        (with_(changes=[["b", "100.00", "9" * 64]]), key, "bad_number"),
        (with_(changes=[["a", "99999999.00", "1"]]), key, "out_of_band"),
    ]


def test_poison_duplicates_and_reordering_never_touch_the_book(infra) -> None:
    topic, dlq, prefix = unique("md-in"), unique("md-dlq"), unique("mdin")
    ensure_topic(infra.kafka_bootstrap, topic, 1)
    ensure_topic(infra.kafka_bootstrap, dlq, 1)
    env = tier_env(
        infra.kafka_bootstrap, infra.redis_url, topic=topic, redis_prefix=prefix, md_group=unique("md-in"),
        md_session_timeout_ms="2000", status_bus_s="0.3", md_dead_letter_topic=dlq,
        md_instance="md-in", partitions="1",
    )  # fmt: skip
    producer = Producer({"bootstrap.servers": infra.kafka_bootstrap, "linger.ms": 1})
    key = PAIR.encode()
    bad = poison()
    # xseq 1, 2, poison…, 3, 2 again (duplicate), 5 (4 is missing: a gap), 4 (late), 6, 6 again.
    sequence: list[tuple[bytes | None, bytes]] = [(valid(1, "1"), key), (valid(2, "2"), key)]
    sequence += [(value, k) for value, k, _ in bad]
    sequence += [(valid(3, "3"), key), (valid(2, "2"), key), (valid(5, "5", "99.00"), key)]
    sequence += [(valid(4, "4"), key), (valid(6, "6"), key), (valid(6, "6"), key)]
    for value, k in sequence:
        producer.produce(topic, value, k)
    assert producer.flush(10) == 0
    md = TierProcess("md", "md_service", env=env).start()
    try:
        wait_until(
            lambda: stored_state(infra.redis_url, prefix, PAIR, 1).get("xseq") == "6", WAIT, "xseq 6 stored"
        )
        expected = OrderBook()  # events 1, 2, 3, 5, 6 in that order: 4 came late, 2 and 6 twice
        for qty, bid in ((1, 10000), (2, 10000), (3, 10000), (5, 9900), (6, 10000)):
            expected.set_level("b", bid, qty * 100_000)
            expected.set_level("a", 10100, qty * 100_000)
        _, book = stored_book(infra.redis_url, prefix, PAIR, 1)
        assert book.book == expected

        def counters() -> dict:
            client = redis.Redis.from_url(infra.redis_url)
            try:
                status = decode_status(client.get(status_key(prefix, "md", "md-in")))
            finally:
                client.close()
            return status["counters"] if status else {}

        wait_until(lambda: counters().get("events_invalid") == len(bad), WAIT, "every poison message counted")
        c = counters()
        kinds: dict[str, int] = {}
        for _, _, kind in bad:
            kinds[kind] = kinds.get(kind, 0) + 1
        assert c["invalid"] == kinds
        assert (c["events_applied"], c["events_duplicate"], c["events_late"]) == (5, 2, 1)
        assert (c["exchange_gaps"], c["exchange_missing"]) == (1, 1)
        assert c["dead_lettered"] == len(bad) and c["dead_letter_failed"] == 0

        # Still running, still applying.
        producer.produce(topic, valid(7, "7"), key)
        producer.flush(10)
        wait_until(
            lambda: stored_state(infra.redis_url, prefix, PAIR, 1).get("xseq") == "7", WAIT, "xseq 7 stored"
        )
        assert md.running

        letters = read_all(infra.kafka_bootstrap, dlq, len(bad))
        assert [(m.value(), m.key()) for m in letters] == [(v, k) for v, k, _ in bad]
        headers = [dict(m.headers()) for m in letters]
        assert [h["bookcast-error-kind"].decode() for h in headers] == [kind for _, _, kind in bad]
        assert [int(h["bookcast-source-offset"]) for h in headers] == list(range(2, 2 + len(bad)))
        assert {h["bookcast-source-topic"].decode() for h in headers} == {topic}
    finally:
        md.stop()


def read_all(bootstrap: str, topic: str, count: int) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("dlq-reader")})
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list = []
    deadline = time.monotonic() + WAIT
    try:
        while len(out) < count and time.monotonic() < deadline:
            out += [m for m in consumer.consume(count, 0.5) if m.error() is None]
    finally:
        consumer.close()
    return out
