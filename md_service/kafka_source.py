"""md_service's side of Kafka: it reads exactly the partitions the service asks for, from where
the service says; the consumer group only says which partitions this instance should write.

Two consumers:

- the *reader* assigns partitions itself (no group) and fetches them: the partitions this
  instance writes, and those it follows warm (a standby's). The service decides which and
  from which offset (the one Redis stores with the last written window, when it takes a
  partition over), so where reading starts never depends on the group;
- the *group member* (not for a standby) subscribes to the topic and joins the consumer
  group, but fetches nothing: its assignment is handed to the service, which claims those
  partitions in Redis. A partition the group moves elsewhere is still read and written here
  until the new owner's claim fences it, and a group whose session expired (a frozen broker)
  changes nothing until the group is back: reading goes on as soon as the broker answers.

Offsets are still committed to the group after each written window, but only so that
standard tools show the lag: they are never read back.

It also feeds librdkafka's statistics and errors to :class:`md_service.kafka_link.KafkaLink`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from md_service.config import MdConfig
from md_service.kafka_link import JOIN_EXTRA_S, STATS_INTERVAL_MS, KafkaLink, librdkafka_logger

log = logging.getLogger(__name__)

# partitions the group assigned -> their start offsets (None: the partition's start); None: stop
OnAssign = Callable[[list[int]], dict[int, int | None] | None]
OnRevoke = Callable[[list[int], bool], None]  # partitions, lost (True: already owned by another member)
METADATA_RETRY_S = 2.0


class KafkaSource:
    """Reads the partitions the service chose; optionally a consumer-group member that fetches nothing."""

    def __init__(self, cfg: MdConfig, on_assign: OnAssign, on_revoke: OnRevoke, group: bool = True) -> None:
        self.cfg = cfg
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self.link = KafkaLink(cfg.session_timeout_ms / 1000, cfg.max_poll_interval_ms / 1000 + JOIN_EXTRA_S)
        common = {
            "bootstrap.servers": cfg.kafka_bootstrap,
            "client.id": f"md-{cfg.instance}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "error_cb": self.link.error,
            "logger": librdkafka_logger(),
        }
        self.consumer = Consumer(
            {
                **common,
                "group.id": f"{cfg.group_id}.reader",  # never joined, never committed to
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": cfg.fetch_wait_ms,
                "statistics.interval.ms": STATS_INTERVAL_MS,
                "stats_cb": self.link.stats,
            }
        )
        self.fetching: set[int] = set()
        self.group: Consumer | None = None
        if group:
            static = {"group.instance.id": cfg.group_instance_id} if cfg.group_instance_id else {}
            self.group = Consumer(
                {
                    **common,
                    **static,
                    "group.id": cfg.group_id,
                    "session.timeout.ms": cfg.session_timeout_ms,
                    "heartbeat.interval.ms": cfg.heartbeat_interval_ms,
                    "max.poll.interval.ms": cfg.max_poll_interval_ms,
                }
            )
            self.group.subscribe(
                [cfg.topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
            )
        self._partitions: list[int] | None = None
        threading.Thread(target=self._look_up_partitions, name="md-metadata", daemon=True).start()

    # --- the group: who should write what -------------------------------------------------

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        log.info("the group assigned partitions %s", numbers)
        self._on_assign(numbers)
        consumer.assign([])  # the group member fetches nothing: the reader does

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._on_revoke(sorted(tp.partition for tp in partitions), False)
        consumer.unassign()

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._on_revoke(sorted(tp.partition for tp in partitions), True)
        consumer.unassign()

    # --- reading --------------------------------------------------------------------------

    def poll(self, timeout: float) -> list[Message]:
        """Up to ``max_batch`` messages (errors included: the caller counts them) within ``timeout``.

        The group's callbacks run first (they may change what is read); the reader's messages
        of a partition moved meanwhile are from the new position only (librdkafka drops what
        was fetched before a seek or an assignment).
        """
        if self.group is not None:
            self.group.consume(num_messages=1, timeout=0)  # serves the group's callbacks; fetches nothing
        return self.consumer.consume(num_messages=self.cfg.max_batch, timeout=timeout)

    def fetch(self, starts: Mapping[int, int | None]) -> None:
        """Read each partition from its offset (None: its start); one already read is moved there."""
        topic = self.cfg.topic
        new = []
        for p, off in starts.items():
            tp = TopicPartition(topic, p, OFFSET_BEGINNING if off is None else off)
            if p not in self.fetching:
                new.append(tp)
                continue
            try:
                self.consumer.seek(tp)
            except KafkaException:  # not fetching yet: assign it afresh at that offset
                self.consumer.incremental_unassign([TopicPartition(topic, p)])
                new.append(tp)
        if new:
            self.consumer.incremental_assign(new)
            self.fetching.update(tp.partition for tp in new)

    def unfetch(self, partitions: list[int]) -> None:
        """Stop reading partitions this instance neither writes nor follows any more."""
        gone = [TopicPartition(self.cfg.topic, p) for p in partitions if p in self.fetching]
        if gone:
            self.consumer.incremental_unassign(gone)
            self.fetching.difference_update(tp.partition for tp in gone)

    def rewind(self, partition: int) -> None:
        """Read ``partition`` again from its start (to rebuild a book whose state Redis lost)."""
        self.fetch({partition: None})

    def partitions(self) -> list[int] | None:
        """The topic's partitions (None until the brokers told; they never change: see feed's topic)."""
        return self._partitions

    def _look_up_partitions(self) -> None:
        """Ask the brokers once, on a thread of its own with its own client: never stalls the loop."""
        admin = AdminClient({"bootstrap.servers": self.cfg.kafka_bootstrap, "logger": librdkafka_logger()})
        while self._partitions is None:
            try:
                topic = admin.list_topics(self.cfg.topic, timeout=METADATA_RETRY_S).topics.get(self.cfg.topic)
                if topic is not None and topic.error is None and topic.partitions:
                    self._partitions = sorted(topic.partitions)
                    if len(self._partitions) != self.cfg.topic_partitions:
                        log.error(
                            "topic %s has %d partitions but BOOKCAST_PARTITIONS is %d: every tier computes "
                            "a pair's partition from it, so events found elsewhere are refused as "
                            "wrong_partition; set BOOKCAST_PARTITIONS to the topic's count everywhere",
                            self.cfg.topic, len(self._partitions), self.cfg.topic_partitions,
                        )  # fmt: skip
                    return
            except KafkaException:
                pass
            threading.Event().wait(METADATA_RETRY_S)

    def commit(self, offsets: dict[int, int]) -> None:
        """Tell the group how far the written windows reach (for lag monitoring only)."""
        if offsets and self.group is not None:
            tps = [TopicPartition(self.cfg.topic, p, off) for p, off in offsets.items()]
            try:
                self.group.commit(offsets=tps, asynchronous=True)
            except Exception as exc:  # advisory: a failed commit changes nothing that matters
                log.debug("offset commit failed: %s", exc)

    def close(self) -> None:
        """Leave the group at once (LeaveGroup: the others need not wait for a session timeout)."""
        if self.group is not None:
            self.group.close()
        self.consumer.close()
