"""The optional dead-letter topic: malformed exchange messages, kept verbatim for inspection.

Each rejected message is produced with its original key and value and headers naming
where it came from and why it was rejected. The producer is flushed before the window
that covers the message is written (and with it the Kafka offset past the message), so a
message is never skipped for good without having reached the dead-letter topic. A crash in
between can write it twice (at-least-once: the headers identify duplicates).
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from mdruntime.log_throttle import LogThrottle

log = logging.getLogger(__name__)


class DeadLetters:
    """A small idempotent producer for one topic; :meth:`flush` reports whether all got through."""

    def __init__(self, bootstrap: str, topic: str, instance: str) -> None:
        self.topic = topic
        self.pending = 0
        self.failed = 0
        self._throttle = LogThrottle(log)  # a delivery failure is per message: one line per 10 s
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "client.id": f"md-dlq-{instance}",
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 30_000,
                "logger": log,
            }
        )

    def send(self, msg: Message, kind: str, reason: str) -> None:
        headers: list[tuple[str, Any]] = [
            ("bookcast-source-topic", msg.topic() or ""),
            ("bookcast-source-partition", str(msg.partition())),
            ("bookcast-source-offset", str(msg.offset())),
            ("bookcast-error-kind", kind),
            ("bookcast-error", reason[:500]),
        ]
        self.pending += 1
        while True:
            try:
                self._producer.produce(
                    self.topic, msg.value(), msg.key(), headers=headers, on_delivery=self._delivered
                )
                return
            except BufferError:
                self._producer.poll(0.05)

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        self.pending -= 1
        if err is not None:
            self.failed += 1
            self._throttle.error("delivery", "dead-letter delivery to %s failed: %s", self.topic, err)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every sent message to be confirmed (or to fail for good)."""
        if self.pending:
            self._producer.flush(timeout)
        return self.pending == 0

    def close(self) -> None:
        self._producer.flush(5.0)
