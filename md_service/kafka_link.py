"""Whether md_service's Kafka brokers answer, judged from librdkafka's own statistics.

librdkafka reconnects by itself and says nothing when a broker merely stops answering: a
frozen or partitioned broker keeps its TCP connections open, and the first error would come only
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
from confluent_kafka import KafkaError

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
    A *logical* connection (librdkafka's ``GroupCoordinator``, an alias of a real one) that
    waits for nothing says nothing: a consumer that only reads (md_service's reader never
    joins a group) keeps one idle while the real connection to the same broker starves.
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
        idle_alias = waiting == 0 and broker.get("source") == "logical"
        if state == "UP" and ((waiting == 0 and not idle_alias) or 0 <= idle_us < limit_s * 1e6):
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

    def down_for(self) -> float | None:
        """Seconds the brokers have not answered (None while they do)."""
        down = self.down_since
        return None if down is None else self.clock() - down

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


def librdkafka_logger() -> logging.Logger:
    """librdkafka's logger, with one :class:`RepeatLimiter` however many consumers a process makes."""
    logger = logging.getLogger("librdkafka")
    if not any(isinstance(f, RepeatLimiter) for f in logger.filters):
        logger.addFilter(RepeatLimiter())
    return logger
