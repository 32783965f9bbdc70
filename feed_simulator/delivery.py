"""The Kafka side of the feed: a throughput-tuned producer and counting of confirmations.

Rates are counted when the broker *confirms* a message, never when it is handed to the
producer, so every figure the feed reports is delivered data. Real events and injected
faults are counted apart, so a fault never inflates the achieved rate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message

log = logging.getLogger("feed_simulator.producer")

DeliveryCallback = Callable[[KafkaError | None, Message], None]


def producer_settings(bootstrap: str, compression: str = "lz4") -> dict[str, Any]:
    """librdkafka settings tuned for throughput: linger, big batches, compression.

    Idempotence keeps each partition in order across retries, so xseq arrives in order.
    ``linger.ms`` 20 lets batches fill (a few hundred events each at 40k/s) while adding
    far less delay than md_service's 50-100 ms windows.
    """
    return {
        "bootstrap.servers": bootstrap,
        "client.id": "bookcast-feed",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "batch.num.messages": 10_000,
        "batch.size": 1_000_000,
        "compression.type": compression,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 256 * 1024,
        "message.timeout.ms": 30_000,
        "logger": log,
    }


class ProducerLike(Protocol):
    """The part of ``confluent_kafka.Producer`` the feed uses (a fake one in unit tests)."""

    def produce(
        self, topic: str, value: bytes, key: bytes, partition: int, on_delivery: DeliveryCallback
    ) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def flush(self, timeout: float) -> int: ...

    def __len__(self) -> int: ...


class DeliveryCounter:
    """Counts broker confirmations; one cached callback per change count, none per message."""

    def __init__(self) -> None:
        self.delivered_events = 0
        self.delivered_changes = 0
        self.failed_events = 0
        self.delivered_injected = 0
        self.failed_injected = 0
        self._callbacks: dict[int, DeliveryCallback] = {}

    def callback(self, changes: int) -> DeliveryCallback:
        """The delivery callback of a real event with ``changes`` level changes."""
        found = self._callbacks.get(changes)
        if found is None:
            found = self._callbacks[changes] = partial(self._on_delivery, changes)
        return found

    def _on_delivery(self, changes: int, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.delivered_events += 1
            self.delivered_changes += changes
            return
        self.failed_events += 1
        self._log_failure(err)

    def on_injected(self, err: KafkaError | None, _msg: Message) -> None:
        """The delivery callback of an injected (fault) message."""
        if err is None:
            self.delivered_injected += 1
            return
        self.failed_injected += 1
        self._log_failure(err)

    def _log_failure(self, err: KafkaError) -> None:
        failures = self.failed_events + self.failed_injected
        if failures == 1 or failures % 10_000 == 0:
            log.error("delivery failed (%d so far): %s", failures, err.str())


def produce(
    producer: ProducerLike,
    topic: str,
    value: bytes,
    key: bytes,
    on_delivery: DeliveryCallback,
    partition: int = -1,
) -> None:
    """Hand one message to the producer, serving deliveries while its local queue is full.

    ``partition`` is the key's (:mod:`mdcore.partitioning`); -1 leaves it to librdkafka's
    partitioner, which computes the same for a key (CRC-32 modulo the partition count).
    """
    while True:
        try:
            producer.produce(topic, value, key, partition, on_delivery)
            return
        except BufferError:
            producer.poll(0.01)
