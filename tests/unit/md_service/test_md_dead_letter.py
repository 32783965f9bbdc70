"""md_service.dead_letter: what a dead letter carries and when ``flush`` says all got through.

The producer is replaced by a recorder (``confluent_kafka.Producer``'s produce/poll/flush), so
the delivery reports are the test's to give. The real topic is covered by
``tests/integration/test_md_input.py`` (``test_poison_duplicates_and_reordering_never_touch_the_book``:
every poison message dead-lettered with its headers, none failed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import md_service.dead_letter as dead_letter_module
from md_service.dead_letter import DeadLetters
from tests.kafka_fakes import FakeMessage


class RecordingProducer:
    """Producer's calls; ``full`` produce calls raise BufferError first (a full local queue)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.produced: list[tuple[str, bytes | None, bytes | None, list, Callable]] = []
        self.polls = 0
        self.flushes: list[float] = []
        self.full = 0

    def produce(
        self, topic: str, value: bytes | None, key: bytes | None, *, headers: list, on_delivery: Callable
    ) -> None:
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        self.produced.append((topic, value, key, headers, on_delivery))

    def poll(self, timeout: float) -> int:
        self.polls += 1
        return 0

    def flush(self, timeout: float) -> int:
        self.flushes.append(timeout)
        return 0

    def deliver(self, i: int, err: object = None) -> None:
        self.produced[i][4](err, None)


@pytest.fixture
def dlq(monkeypatch: pytest.MonkeyPatch) -> DeadLetters:
    monkeypatch.setattr(dead_letter_module, "Producer", RecordingProducer)
    return DeadLetters("127.0.0.1:1", "md-dlq", "host-1")


def producer(dlq: DeadLetters) -> RecordingProducer:
    p = dlq._producer
    assert isinstance(p, RecordingProducer)
    return p


def test_the_producer_is_idempotent_and_waits_for_every_replica(dlq: DeadLetters) -> None:
    config = producer(dlq).config
    assert config["enable.idempotence"] is True and config["acks"] == "all"
    assert config["client.id"] == "md-dlq-host-1" and config["bootstrap.servers"] == "127.0.0.1:1"


def test_a_dead_letter_is_the_message_verbatim_with_where_it_came_from_and_why(dlq: DeadLetters) -> None:
    msg = FakeMessage(b"{garbled", key=b"BTC-USD", partition=3, offset=41, topic="events")
    dlq.send(msg, "not_json", "x" * 600)
    ((topic, value, key, headers, _),) = producer(dlq).produced
    assert (topic, value, key) == ("md-dlq", b"{garbled", b"BTC-USD")
    named = dict(headers)
    assert named["bookcast-source-topic"] == "events"
    assert (named["bookcast-source-partition"], named["bookcast-source-offset"]) == ("3", "41")
    assert named["bookcast-error-kind"] == "not_json" and named["bookcast-error"] == "x" * 500  # cut to 500


def test_flush_is_true_only_once_every_sent_letter_is_confirmed_or_failed_for_good(dlq: DeadLetters) -> None:
    assert dlq.flush(1.0) and producer(dlq).flushes == []  # nothing pending: no flush at all
    msg = FakeMessage(b"v", key=b"k", partition=0, offset=1, topic="events")
    dlq.send(msg, "not_json", "r")
    dlq.send(msg, "not_json", "r")
    assert dlq.pending == 2 and not dlq.flush(1.0) and producer(dlq).flushes == [1.0]
    producer(dlq).deliver(0)
    producer(dlq).deliver(1, err="broker down")
    assert dlq.flush(1.0) and (dlq.pending, dlq.failed) == (0, 1)


def test_a_full_local_queue_is_served_then_the_letter_is_sent(dlq: DeadLetters) -> None:
    producer(dlq).full = 2
    dlq.send(FakeMessage(b"v", key=b"k", partition=0, offset=1, topic="events"), "bad_side", "r")
    assert producer(dlq).polls == 2 and len(producer(dlq).produced) == 1 and dlq.pending == 1


def test_close_flushes_what_is_left(dlq: DeadLetters) -> None:
    dlq.close()
    assert producer(dlq).flushes == [5.0]
