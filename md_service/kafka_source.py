"""md_service's side of Kafka: a consumer-group member that commits only what was published."""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from md_service.config import MdConfig

log = logging.getLogger(__name__)


class KafkaSource:
    """Consumes in batches; tracks the next offset per partition; commits on request.

    ``on_revoke(partitions)`` runs inside :meth:`poll` when the group takes partitions away,
    so the caller can publish its open windows and commit before another member resumes.
    """

    def __init__(self, cfg: MdConfig, on_revoke: Callable[[list[int]], None]) -> None:
        self.cfg = cfg
        self._on_revoke = on_revoke
        self.positions: dict[int, int] = {}  # partition -> next offset to consume
        self.assigned: set[int] = set()
        self.consumer = Consumer(
            {
                "bootstrap.servers": cfg.kafka_bootstrap,
                "group.id": cfg.group_id,
                "client.id": f"md-{cfg.instance}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": cfg.session_timeout_ms,
                "heartbeat.interval.ms": max(500, cfg.session_timeout_ms // 6),
                "max.poll.interval.ms": cfg.max_poll_interval_ms,
                "fetch.wait.max.ms": 10,
                "logger": logging.getLogger("librdkafka"),
            }
        )
        self.consumer.subscribe([cfg.topic], on_assign=self._assigned, on_revoke=self._revoked)

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned |= {tp.partition for tp in partitions}
        log.info("assigned partitions %s", sorted(tp.partition for tp in partitions))

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = [tp.partition for tp in partitions]
        log.info("revoking partitions %s", sorted(lost))
        self._on_revoke(lost)
        for p in lost:
            self.assigned.discard(p)
            self.positions.pop(p, None)

    def poll(self, timeout: float) -> list[Message]:
        """Up to ``max_batch`` messages, or fewer once ``timeout`` passes; errors are logged."""
        batch = self.consumer.consume(num_messages=self.cfg.max_batch, timeout=timeout)
        good: list[Message] = []
        for msg in batch:
            err = msg.error()
            if err is None:
                self.positions[msg.partition()] = msg.offset() + 1
                good.append(msg)
            elif err.code() != KafkaError._PARTITION_EOF:
                log.warning("kafka: %s", err)
        return good

    def commit(self, partitions: list[int] | None = None, asynchronous: bool = True) -> None:
        """Commit the consumed positions (all, or those of ``partitions``)."""
        offsets = [
            TopicPartition(self.cfg.topic, p, off)
            for p, off in self.positions.items()
            if partitions is None or p in partitions
        ]
        if offsets:
            self.consumer.commit(offsets=offsets, asynchronous=asynchronous)

    def close(self) -> None:
        self.consumer.close()
