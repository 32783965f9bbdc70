"""md_service's view of the Kafka link, from librdkafka's statistics and errors: pure, no broker.

The statistics below are shaped like the ones librdkafka 2.x sent while the embedded broker
ran, was frozen (SIGSTOP) and came back, and while nothing listened on its port.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError

from md_service.config import MdConfig
from md_service.counters import MdCounters
from md_service.kafka_link import KafkaLink, RepeatLimiter, brokers_answering
from md_service.metrics import MdMetrics, kafka_up
from md_service.ownership import Ownership
from md_service.service import MdService
from tests.unit.md_service.md_fakes import ScriptedSource, ScriptedStore

STALL_S, JOIN_STALL_S = 2.0, 13.0


def broker(state: str, rxidle_ms: float, waiting: int, source: str = "learned") -> dict[str, Any]:
    return {"state": state, "rxidle": int(rxidle_ms * 1000), "waitresp_cnt": waiting, "source": source}


def stats(join_state: str = "steady", **brokers: dict[str, Any]) -> dict[str, Any]:
    named = {name.replace("_", ":"): b for name, b in brokers.items()}
    return {"brokers": named, "cgrp": {"state": "up", "join_state": join_state}}


def answering(s: dict[str, Any]) -> bool:
    return brokers_answering(s, STALL_S, JOIN_STALL_S)[0]


def test_a_consuming_broker_answers() -> None:
    s = stats(b111=broker("UP", 3, 1), GroupCoordinator=broker("UP", 440, 0, "logical"))
    assert answering(s)


def test_a_frozen_broker_keeps_its_connection_up_but_stops_answering() -> None:
    # requests outstanding and nothing received for longer than the stall limit
    s = stats(b111=broker("UP", 2990, 3), GroupCoordinator=broker("APIVERSION_QUERY", -0.001, 1, "logical"))
    ok, why = brokers_answering(s, STALL_S, JOIN_STALL_S)
    assert not ok
    assert "b111 silent 3.0 s with 3 requests waiting" in why and "GroupCoordinator APIVERSION_QUERY" in why


def test_an_idle_coordinator_alias_does_not_hide_a_frozen_broker() -> None:
    # md_service's reader never joins a group: its GroupCoordinator alias waits for nothing
    s = stats(b111=broker("UP", 4000, 2), GroupCoordinator=broker("UP", 7000, 0, "logical"))
    assert not answering(s)
    assert answering(stats(b111=broker("UP", 4000, 2), GroupCoordinator=broker("UP", 40, 0, "logical")))


def test_just_frozen_is_not_yet_down() -> None:
    assert answering(stats(b111=broker("UP", 1990, 1), GroupCoordinator=broker("UP", 2400, 2, "logical")))


def test_an_idle_connection_waiting_for_nothing_answers() -> None:
    # no assignment: nothing to fetch, so long silence means nothing
    assert answering(stats(b111=broker("UP", 14_000, 0)))


def test_nothing_listening_is_down() -> None:
    s = stats("init", bootstrap=broker("INIT", -0.001, 0, "configured"))
    assert brokers_answering(s, STALL_S, JOIN_STALL_S) == (False, "bootstrap INIT")
    assert brokers_answering({}, STALL_S, JOIN_STALL_S) == (False, "no broker known")


def test_the_coordinator_may_hold_a_join_for_the_whole_rebalance() -> None:
    coordinator = broker("UP", 5_000, 1, "logical")
    assert answering(stats("wait-join", GroupCoordinator=coordinator, b111=broker("INIT", -0.001, 0)))
    assert answering(stats("wait-sync", GroupCoordinator=coordinator))
    assert not answering(stats("steady", GroupCoordinator=coordinator))
    assert not answering(stats("wait-join", GroupCoordinator=broker("UP", 14_000, 1, "logical")))
    # the long allowance is the coordinator's alone
    assert not answering(stats("wait-join", b111=broker("UP", 5_000, 1)))


def test_the_internal_broker_does_not_count() -> None:
    assert not answering(stats(internal=broker("UP", 0, 0, "internal")))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def raw(s: dict[str, Any]) -> str:
    return orjson.dumps(s).decode()


UP = raw(stats(b111=broker("UP", 3, 1)))
DOWN = raw(stats(b111=broker("UP", 9_000, 2)))


def kafka_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "kafka" in r.getMessage()]


def test_down_and_back_are_logged_once_each_however_many_signals(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="md_service.kafka_link")
    clock = Clock()
    link = KafkaLink(STALL_S, JOIN_STALL_S, clock)
    assert not link.up and link.down_for() == 0.0  # not connected yet
    clock.now += 0.9
    link.stats(UP)
    assert link.up and link.connected and link.down_for() is None
    for _ in range(5):
        clock.now += 1.0
        link.stats(UP)
    clock.now += 1.0
    link.stats(DOWN)
    assert not link.up and link.down_since == clock.now
    for _ in range(10):
        clock.now += 1.0
        link.stats(DOWN)
        link.error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert link.down_for() == 10.0 and link.reason == "1/1 brokers are down"
    clock.now += 0.5
    link.stats(UP)
    link.stats(UP)
    assert link.up
    lines = kafka_lines(caplog)
    assert len(lines) == 3, lines
    assert lines[0] == "kafka: connected after 0.9 s"
    assert lines[1].startswith("kafka unavailable (b111 silent 9.0 s with 2 requests waiting)")
    assert lines[2] == "kafka is back after 10.5 s: consuming again"


def test_all_brokers_down_is_down_at_once_and_every_error_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    link = KafkaLink(STALL_S, JOIN_STALL_S, clock)
    counted: list[str] = []
    link.on_error = counted.append
    link.stats(UP)
    link.error(KafkaError(KafkaError._TRANSPORT, "127.0.0.1:1/bootstrap: Connect failed"))
    assert link.up  # one connection failing is not the link: another may answer
    link.error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert not link.up and link.errors == 2
    assert counted == ["127.0.0.1:1/bootstrap: Connect failed", "1/1 brokers are down"]
    assert link.last_error == "1/1 brokers are down"


def test_unreachable_from_the_start_is_logged_once_after_the_stall_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="md_service.kafka_link")
    clock = Clock()
    link = KafkaLink(STALL_S, JOIN_STALL_S, clock)
    nothing = raw(stats("init", bootstrap=broker("INIT", -0.001, 0, "configured")))
    link.stats(nothing)  # a slow start is not news
    assert kafka_lines(caplog) == []
    for _ in range(5):
        clock.now += 1.0
        link.stats(nothing)
    clock.now += 1.0
    link.stats(UP)
    assert kafka_lines(caplog) == [
        "kafka unreachable since start (bootstrap INIT); retrying",
        "kafka is back after 6.0 s: consuming again",
    ]


def test_statistics_that_are_not_json_change_nothing() -> None:
    link = KafkaLink(STALL_S, JOIN_STALL_S, Clock())
    link.stats(UP)
    link.stats("{not json")
    assert link.up


def record(facility: str) -> logging.LogRecord:
    return logging.LogRecord(
        "librdkafka", logging.ERROR, "", 0, "%s [%s] %s", (facility, "rdkafka#1", "x"), None
    )


def test_librdkafkas_per_retry_lines_are_let_through_once_per_interval() -> None:
    clock = Clock()
    limiter = RepeatLimiter(10.0, clock)
    assert limiter.filter(record("FAIL"))
    assert not limiter.filter(record("FAIL"))  # the next reconnect, 50 ms later
    assert limiter.filter(record("REQTMOUT"))  # each facility on its own
    assert limiter.filter(record("SESSTMOUT")) and limiter.filter(record("SESSTMOUT"))  # others untouched
    clock.now += 10.0
    assert limiter.filter(record("FAIL"))


def service_with(link: KafkaLink | None) -> SimpleNamespace:
    return SimpleNamespace(
        counters=MdCounters(), ownership=Ownership(), redis_down_since=None, streams={},
        source=SimpleNamespace(link=link) if link is not None else SimpleNamespace(),
    )  # fmt: skip


def test_the_exporter_and_the_status_bus_report_the_link() -> None:
    clock = Clock()
    link = KafkaLink(STALL_S, JOIN_STALL_S, clock)
    link.stats(UP)
    service = service_with(link)
    assert kafka_up(service) is True  # type: ignore[arg-type]
    assert b"bookcast_md_kafka_up 1.0" in MdMetrics().bind(service).render()  # type: ignore[arg-type]
    link.stats(DOWN)
    assert kafka_up(service) is False  # type: ignore[arg-type]
    assert b"bookcast_md_kafka_up 0.0" in MdMetrics().bind(service).render()  # type: ignore[arg-type]
    unknown = service_with(None)
    assert kafka_up(unknown) is None  # type: ignore[arg-type]
    assert b"bookcast_md_kafka_up" not in MdMetrics().bind(unknown).render()  # type: ignore[arg-type]

    def status(up: bool | None) -> dict[str, Any]:
        """The service's status with a link that answers, one that does not, or none (a scripted source)."""
        link = None
        if up is not None:
            link = KafkaLink(STALL_S, JOIN_STALL_S, clock)
            link.stats(UP if up else DOWN)
        source = ScriptedSource(link)
        return MdService(MdConfig("", ""), ScriptedStore(), lambda on_assign, on_revoke: source).status()

    assert status(True)["kafka"] == "up" and status(False)["kafka"] == "down"
    assert status(None)["kafka"] == "unknown"
