"""Kafka unavailable: md_service stays up, says so, publishes and commits nothing, then resumes exactly.

md_service runs as its real command against a private embedded broker (pausing the
session's shared broker would stall every other test). Two ways Kafka goes missing:

- frozen mid-stream (SIGSTOP), the hard case: its TCP connections stay open, so librdkafka
  reports no error for a minute and md_service must notice from the silence. Tansu keeps
  its messages in memory, so it is paused, never killed: every event produced before,
  during and after the outage must reach Redis exactly once, in order, in one epoch per pair;
- not there yet when md_service starts (nothing listens on its port: every connection is
  refused), then started.
"""

from __future__ import annotations

import os
import re
import signal
import urllib.request
from collections.abc import Iterator

import pytest
import redis

from bookcast.embedded_kafka import EmbeddedKafka
from bookcast.loopback import free_port
from bookcast.processes import TierProcess, tier_env
from feed_simulator.topic import ensure_topic
from mdcore.redis_layout import RedisLayout
from mdcore.status_bus import decode_status, status_key
from tests.integration.stack_helpers import (
    EXCHANGE_PAIRS,
    ChannelRecorder,
    Feeder,
    assert_one_stream_per_epoch,
    rebuild,
    source_books,
    stored_book,
    stored_state,
    unique,
    wait_until,
)

pytestmark = pytest.mark.integration

PAIRS = EXCHANGE_PAIRS  # the pairs Feeder's exchange trades
PARTITIONS = 4
WAIT = 30.0
INSTANCE = "md-kafka-down"
SESSION_TIMEOUT_MS = 2000  # the link's stall limit too: down is reported ~2-3 s after the broker froze


class Rig:
    """md_service (the real command) and a private broker on a reserved port, the shared Redis.

    Either may start first: until :meth:`start_kafka` nothing listens on the broker's port.
    """

    def __init__(self, redis_url: str) -> None:
        kafka_port = free_port()
        self.kafka = EmbeddedKafka(port=kafka_port)
        self.bootstrap, self.redis_url = f"127.0.0.1:{kafka_port}", redis_url
        self.topic, self.prefix = unique("mdk-deltas"), unique("mdk")
        self.metrics_port = free_port()
        env = tier_env(
            self.bootstrap, redis_url,
            topic=self.topic, redis_prefix=self.prefix, md_group=unique("mdk"), pairs=",".join(PAIRS),
            partitions=str(PARTITIONS),
            md_session_timeout_ms=str(SESSION_TIMEOUT_MS), md_check_ms="200",
            md_metrics_port=str(self.metrics_port), status_bus_s="0.3", md_instance=INSTANCE,
        )  # fmt: skip
        self.md = TierProcess(INSTANCE, "md_service", env=env)
        self.recorder = ChannelRecorder(redis_url, self.prefix, PAIRS, PARTITIONS)
        self.recorder.start()

    def start_kafka(self) -> None:
        self.kafka.start()
        ensure_topic(self.bootstrap, self.topic, PARTITIONS)

    def start_md(self) -> None:
        self.md.start()

    def close(self) -> None:
        self.recorder.close()
        self.md.stop()
        self.kafka.stop()

    def status(self) -> dict:
        """md_service's status on the status bus, rewritten every 0.3 s (what the dashboard reads too)."""
        client = redis.Redis.from_url(self.redis_url)
        try:
            return decode_status(client.get(status_key(self.prefix, "md", INSTANCE))) or {}
        finally:
            client.close()

    bus_status = status  # one status: the dashboard's and the operators' are the same document

    def kafka_gauge(self) -> float | None:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as reply:
            text = reply.read().decode()
        found = re.search(r"^bookcast_md_kafka_up (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else None

    def down_for(self) -> float:
        """Seconds md_service says Kafka has been down (0 while up)."""
        return float(self.status().get("kafka_down_s") or 0.0)

    def offsets(self) -> dict[bytes, bytes]:
        """The Kafka offsets stored in Redis with the windows (where reading resumes)."""
        client = redis.Redis.from_url(self.redis_url)
        layout = RedisLayout(self.prefix, PARTITIONS)
        try:
            stored = {}
            for p in range(PARTITIONS):  # one hash per partition
                stored.update(client.hgetall(layout.md_key(p, self.topic)))
        finally:
            client.close()
        return {k: v for k, v in stored.items() if k.startswith(b"offset:")}

    def log_lines(self, text: str) -> int:
        return sum(text in line for line in self.md.log_path.read_text(errors="replace").splitlines())


@pytest.fixture
def rig(infra) -> Iterator[Rig]:
    r = Rig(infra.redis_url)
    try:
        yield r
    finally:
        r.close()


def wait_connected(rig: Rig) -> None:
    wait_until(
        lambda: rig.status().get("kafka") == "up" and len(rig.status().get("partitions", [])) == PARTITIONS,
        timeout=WAIT, what="md_service connected and owning every partition",
    )  # fmt: skip
    assert rig.kafka_gauge() == 1.0
    wait_until(lambda: rig.bus_status().get("kafka") == "up", timeout=WAIT, what="status bus: kafka up")


def wait_written(rig: Rig, feeder: Feeder) -> None:
    """Until md_service has written every pair through the last event produced."""
    for pair in PAIRS:
        last = str(feeder.produced(pair))
        wait_until(
            lambda p=pair, x=last: stored_state(rig.redis_url, rig.prefix, p, PARTITIONS).get("xseq") == x,
            timeout=WAIT, what=f"{pair} written through xseq {last}",
        )  # fmt: skip


def assert_exactly_the_source(rig: Rig, feeder: Feeder) -> None:
    """Per pair: one epoch, seqs 1..N (none reused or missing), history as published, book as the source."""
    truth = source_books(rig.bootstrap, rig.topic, PARTITIONS, feeder.delivered)
    client = redis.Redis.from_url(rig.redis_url)
    try:
        for pair in PAIRS:
            state, book = stored_book(rig.redis_url, rig.prefix, pair, PARTITIONS)
            assert book.book == truth[pair].book, f"{pair}: md_service's book differs from the source"
            assert state.xseq == truth[pair].last_xseq
            epoch, raws = assert_one_stream_per_epoch(rig.recorder, pair)
            assert (epoch, len(raws)) == (state.epoch, state.seq)
            assert rebuild(pair, epoch, raws).book == truth[pair].book
            history = client.xrange(RedisLayout(rig.prefix, PARTITIONS).history_key(pair))
            assert [fields[b"d"] for _, fields in history] == raws
    finally:
        client.close()
    counters = rig.status()["counters"]
    assert (counters["exchange_gaps"], counters["events_duplicate"], counters["events_late"]) == (0, 0, 0)
    assert counters["epochs_started"] == len(PAIRS) and counters["pairs_refused"] == 0


async def test_kafka_frozen_mid_stream_md_reports_it_publishes_nothing_then_resumes_exactly(rig: Rig) -> None:
    rig.start_kafka()
    rig.start_md()
    wait_connected(rig)
    feeder = Feeder(rig.bootstrap, rig.topic, count=2400, rate=400)
    feeder.start()
    try:
        wait_until(lambda: feeder.delivered > 600, timeout=WAIT, what="a quarter of the events")
        os.kill(rig.kafka.pid, signal.SIGSTOP)  # frozen: connections open, no answers, no data lost
        try:
            wait_until(lambda: rig.down_for() > 0, timeout=WAIT, what="md_service to report kafka down")
            assert rig.kafka_gauge() == 0.0
            wait_until(lambda: rig.bus_status().get("kafka") == "down", timeout=WAIT, what="status bus: down")
            published, deltas = len(rig.recorder.messages), rig.status()["counters"]["deltas"]
            offsets = rig.offsets()
            # md_service keeps running and reporting (its status is rewritten with a growing outage)
            # while nothing is published and no offset moves.
            wait_until(lambda: rig.down_for() >= 3.0, timeout=WAIT, what="md_service to stay up through it")
            assert rig.md.running
            assert len(rig.recorder.messages) == published
            assert rig.status()["counters"]["deltas"] == deltas
            assert rig.offsets() == offsets
        finally:
            os.kill(rig.kafka.pid, signal.SIGCONT)
        wait_until(
            lambda: rig.status().get("kafka") == "up", timeout=WAIT, what="md_service to report kafka up"
        )
        assert rig.kafka_gauge() == 1.0
        wait_until(lambda: rig.bus_status().get("kafka") == "up", timeout=WAIT, what="status bus: up again")
        feeder.join(WAIT)
        assert feeder.delivered == 2400 and feeder.failed == 0
        wait_written(rig, feeder)  # consumption resumed: every event, produced before and during the outage
    finally:
        feeder.stop.set()
    assert_exactly_the_source(rig, feeder)
    assert rig.log_lines("kafka unavailable") == 1 and rig.log_lines("kafka is back") == 1


async def test_kafka_not_there_at_start_md_waits_reports_it_then_consumes(rig: Rig) -> None:
    rig.start_md()  # nothing listens on the broker's port: every connection is refused
    wait_until(lambda: rig.log_lines("kafka unreachable since start") == 1, timeout=WAIT, what="md to say so")
    limit = SESSION_TIMEOUT_MS / 1000
    wait_until(lambda: rig.down_for() >= limit, timeout=WAIT, what=f"status: kafka down for {limit} s")
    assert rig.kafka_gauge() == 0.0
    wait_until(lambda: rig.bus_status().get("kafka") == "down", timeout=WAIT, what="status bus: down")
    assert rig.status()["counters"]["kafka_errors"] > 0 and rig.status()["kafka_last_error"]
    # librdkafka retries every ~50 ms; its connection failures are logged once per 10 s, not each time
    assert rig.log_lines("Connection refused") <= 2
    rig.start_kafka()
    wait_connected(rig)
    feeder = Feeder(rig.bootstrap, rig.topic, count=600, rate=600)
    feeder.start()
    try:
        feeder.join(WAIT)
        assert feeder.delivered == 600 and feeder.failed == 0
        wait_written(rig, feeder)
    finally:
        feeder.stop.set()
    assert_exactly_the_source(rig, feeder)
    assert rig.log_lines("kafka is back") == 1 and rig.log_lines("kafka unavailable") == 0
