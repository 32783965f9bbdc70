"""md_service's side of Kafka: a consumer-group member that starts where Redis says.

The group decides which instance reads which partition; Redis decides where reading
starts. On assignment the service claims the partitions in Redis and returns the offsets
stored with their last written windows, and this class assigns the partitions at exactly
those offsets (the start of the partition when none is stored). Offsets are still
committed to the group after each written window, but only so that standard tools show
the lag: they are never read back.

It also tells whether the brokers answer (:class:`KafkaLink`), because librdkafka
reconnects by itself and says nothing when a broker merely stops answering: a frozen or
partitioned broker keeps its TCP connections open, and the first error would come only
after ``socket.timeout.ms`` (60 s) and more. The link is judged from librdkafka's own
statistics, once a second on the service thread, plus ``_ALL_BROKERS_DOWN`` from
``error_cb``; nothing is added per message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from md_service.config import MdConfig

log = logging.getLogger(__name__)

STATS_INTERVAL_MS = 1000  # how often librdkafka hands over its statistics (the link's clock)
JOIN_EXTRA_S = 3.0  # librdkafka lets a JoinGroup run max.poll.interval.ms + 3 s before giving up
JOINING = frozenset({"wait-join", "wait-sync"})  # group states in which the coordinator may hold a request
LIBRDKAFKA_REPEAT_S = 10.0  # librdkafka's per-retry connection lines: at most one per facility this often
_REPEATED_FACILITIES = frozenset({"FAIL", "REQTMOUT"})


def brokers_answering(stats: Mapping[str, Any], stall_s: float, join_stall_s: float) -> tuple[bool, str]:
    """Whether any broker answers, from one librdkafka statistics object; and why not.

    A connection answers when it is ``UP`` and either waits for nothing or received
    something within ``stall_s``: a fetch (``fetch.wait.max.ms`` = 10) or a heartbeat comes
    back in milliseconds, so silence with requests outstanding for that long means the
    broker is gone, even with its TCP connection open. The group coordinator may hold a
    JoinGroup or SyncGroup for the whole rebalance, so while the group joins it gets
    ``join_stall_s``. One answering connection is enough: the consumer can make progress.
    """
    joining = (stats.get("cgrp") or {}).get("join_state") in JOINING
    seen = []
    for name, broker in (stats.get("brokers") or {}).items():
        if broker.get("source") == "internal":
            continue
        state = broker.get("state", "?")
        waiting = broker.get("waitresp_cnt", 0)
        idle_us = broker.get("rxidle", -1)
        limit_s = join_stall_s if joining and name == "GroupCoordinator" else stall_s
        if state == "UP" and (waiting == 0 or 0 <= idle_us < limit_s * 1e6):
            return True, ""
        if state != "UP":
            seen.append(f"{name} {state}")
        else:
            silent = "never answered" if idle_us < 0 else f"silent {idle_us / 1e6:.1f} s"
            seen.append(f"{name} {silent} with {waiting} requests waiting")
    return False, "; ".join(seen) or "no broker known"


class KafkaLink:
    """Up or down, and since when; logs once when the brokers stop answering and once when they are back.

    Fed on the service thread by librdkafka's callbacks (:meth:`stats`, :meth:`error`); read
    by the status and metrics threads (:attr:`down_since` is one attribute, read whole).
    Until the first answer the link counts as down since start, but that is only logged
    if it lasts ``stall_s`` (a normal start takes well under a second).
    """

    def __init__(
        self, stall_s: float, join_stall_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stall_s = stall_s
        self.join_stall_s = join_stall_s
        self.clock = clock
        self.started = clock()
        self.down_since: float | None = self.started
        self.connected = False  # answered at least once
        self.reason = "connecting"
        self.last_error: str | None = None
        self.errors = 0
        self.on_error: Callable[[str], None] | None = None  # the service counts the errors
        self._start_logged = False

    @property
    def up(self) -> bool:
        return self.down_since is None

    def describe(self) -> str:
        """``up`` or ``down for N s`` (how the service's status reports Redis too)."""
        down = self.down_since
        return "up" if down is None else f"down for {self.clock() - down:.1f} s"

    def stats(self, raw: str | bytes) -> None:
        """librdkafka's ``stats_cb``: judge the link (:func:`brokers_answering`)."""
        try:
            stats = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        answering, why = brokers_answering(stats, self.stall_s, self.join_stall_s)
        if answering:
            self.mark_up()
        else:
            self.mark_down(why)

    def error(self, err: KafkaError) -> None:
        """librdkafka's ``error_cb``: count and keep the error; every broker down is the link down."""
        text = err.str()
        self.errors += 1
        self.last_error = text
        if self.on_error is not None:
            self.on_error(text)
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.mark_down(text)

    def mark_up(self) -> None:
        down = self.down_since
        if down is None:
            return
        now = self.clock()
        if self.connected or self._start_logged:
            log.warning("kafka is back after %.1f s: consuming again", now - down)
        else:
            log.info("kafka: connected after %.1f s", now - down)
        self.down_since = None
        self.connected = True
        self.reason = ""
        self._start_logged = False

    def mark_down(self, reason: str) -> None:
        now = self.clock()
        self.reason = reason
        if self.down_since is None:
            self.down_since = now
            log.warning("kafka unavailable (%s); nothing is consumed, published or committed until it is "
                        "back; windows keep closing", reason)  # fmt: skip
        elif not self.connected and not self._start_logged and now - self.started >= self.stall_s:
            self._start_logged = True
            log.warning("kafka unreachable since start (%s); retrying", reason)


class RepeatLimiter(logging.Filter):
    """Lets through one of librdkafka's per-retry connection lines per facility every ``every_s``.

    librdkafka logs every failed reconnect (every ~50 ms against a closed port); the link
    already says once that Kafka is down, and ``kafka_errors`` counts each failure.
    """

    def __init__(
        self, every_s: float = LIBRDKAFKA_REPEAT_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.every_s = every_s
        self.clock = clock
        self._next: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        facility = args[0] if isinstance(args, tuple) and args else None
        if facility not in _REPEATED_FACILITIES:
            return True
        now = self.clock()
        if now < self._next.get(str(facility), 0.0):
            return False
        self._next[str(facility)] = now + self.every_s
        return True


def _librdkafka_logger() -> logging.Logger:
    """librdkafka's logger, with one :class:`RepeatLimiter` however many consumers a process makes."""
    logger = logging.getLogger("librdkafka")
    if not any(isinstance(f, RepeatLimiter) for f in logger.filters):
        logger.addFilter(RepeatLimiter())
    return logger


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
                "fetch.wait.max.ms": 10,
                "statistics.interval.ms": STATS_INTERVAL_MS,
                "stats_cb": self.link.stats,
                "error_cb": self.link.error,
                "logger": _librdkafka_logger(),
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
