"""md_service's side of Kafka: a consumer-group member that starts where Redis says.

The group decides which instance reads which partition; Redis decides where reading
starts. On assignment the service claims the partitions in Redis and returns the offsets
stored with their last written windows, and this class assigns the partitions at exactly
those offsets (the start of the partition when none is stored). Offsets are still
committed to the group after each written window, but only so that standard tools show
the lag: they are never read back.

It also feeds librdkafka's statistics and errors to :class:`md_service.kafka_link.KafkaLink`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from md_service.config import MdConfig
from md_service.kafka_link import JOIN_EXTRA_S, STATS_INTERVAL_MS, KafkaLink, librdkafka_logger

log = logging.getLogger(__name__)

# partitions -> start offset of each (None: the partition's start); None overall: stop, assign nothing
OnAssign = Callable[[list[int]], dict[int, int | None] | None]
OnRevoke = Callable[[list[int], bool], None]  # partitions, lost (True: already owned by another member)


class KafkaSource:
    """Consumes in batches from the partitions the group assigned, from Redis' offsets."""

    def __init__(self, cfg: MdConfig, on_assign: OnAssign, on_revoke: OnRevoke) -> None:
        self.cfg = cfg
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._starts: dict[int, int | None] = {}  # the current assignment's start offsets
        self.rebalanced = False  # set by the rebalance callbacks during a poll
        self.link = KafkaLink(cfg.session_timeout_ms / 1000, cfg.max_poll_interval_ms / 1000 + JOIN_EXTRA_S)
        self.consumer = Consumer(
            {
                "bootstrap.servers": cfg.kafka_bootstrap,
                "group.id": cfg.group_id,
                "client.id": f"md-{cfg.instance}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": cfg.session_timeout_ms,
                "heartbeat.interval.ms": cfg.heartbeat_interval_ms,
                "max.poll.interval.ms": cfg.max_poll_interval_ms,
                "fetch.wait.max.ms": cfg.fetch_wait_ms,
                "statistics.interval.ms": STATS_INTERVAL_MS,
                "stats_cb": self.link.stats,
                "error_cb": self.link.error,
                "logger": librdkafka_logger(),
            }
        )
        self.consumer.subscribe(
            [cfg.topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rebalanced = True
        numbers = sorted(tp.partition for tp in partitions)
        starts = self._on_assign(numbers)
        if starts is None:
            return
        self._starts = {p: starts.get(p) for p in numbers}
        positions = self._start_positions()
        consumer.assign(positions)
        consumer.resume(positions)  # a partition paused while fenced stays paused across assignments
        log.info("assigned partitions %s starting at %s", numbers, self._starts)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rebalanced = True
        self._on_revoke(sorted(tp.partition for tp in partitions), False)
        self._starts = {}
        consumer.unassign()

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rebalanced = True
        self._on_revoke(sorted(tp.partition for tp in partitions), True)
        self._starts = {}
        consumer.unassign()

    def _start_positions(self) -> list[TopicPartition]:
        topic = self.cfg.topic
        return [
            TopicPartition(topic, p, OFFSET_BEGINNING if off is None else off)
            for p, off in self._starts.items()
        ]

    def poll(self, timeout: float) -> list[Message]:
        """Up to ``max_batch`` messages (errors included: the caller counts them) within ``timeout``.

        If the group rebalanced during the call, the batch may mix messages read before the
        rebalance with messages of the new assignment, and which are which cannot be told:
        the batch is dropped and the new assignment restarted at the offsets it was given
        (nothing of it was handled yet), so every message is handled under the right owner.
        """
        self.rebalanced = False
        batch = self.consumer.consume(num_messages=self.cfg.max_batch, timeout=timeout)
        if not self.rebalanced:
            return batch
        if batch and self._starts:
            self.consumer.assign(self._start_positions())
        return []

    def rewind(self, partition: int) -> None:
        """Read ``partition`` again from its start (to rebuild a book whose state Redis lost)."""
        self.consumer.seek(TopicPartition(self.cfg.topic, partition, OFFSET_BEGINNING))

    def pause(self, partition: int) -> None:
        """Stop fetching a partition another instance owns now (until the next assignment)."""
        self.consumer.pause([TopicPartition(self.cfg.topic, partition)])

    def commit(self, offsets: dict[int, int]) -> None:
        """Tell the group how far the written windows reach (for lag monitoring only)."""
        if offsets:
            tps = [TopicPartition(self.cfg.topic, p, off) for p, off in offsets.items()]
            try:
                self.consumer.commit(offsets=tps, asynchronous=True)
            except Exception as exc:  # advisory: a failed commit changes nothing that matters
                log.debug("offset commit failed: %s", exc)

    def close(self) -> None:
        self.consumer.close()
