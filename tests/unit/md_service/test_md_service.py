"""MdService's own decisions, without Kafka or Redis: the real service on scripted parts.

The source and the store are the scripted stand-ins of :mod:`tests.unit.md_service.md_fakes`,
which satisfy :class:`md_service.ports.MdSource` and :class:`md_service.ports.MdStore` as the
real classes do (``test_md_ports.py``); the store answers window writes and refuses any call a
test did not expect. The loop itself (``run``) needs Kafka and Redis: the integration tests
drive it.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import replace

import pytest
import redis

from md_service.cadence import Tick
from md_service.claim_script import Claim
from md_service.config import MdConfig
from md_service.intake import Rewinder
from md_service.kafka_link import KafkaLink
from md_service.pair_stream import PairStream
from md_service.service import MdService
from mdcore.messages import StreamPosition
from mdcore.status_bus import decode_status, encode_status
from tests.unit.md_service.md_fakes import ScriptedSource, ScriptedStore

CFG = MdConfig("", "", instance="md-test", window_slots=2)
NOW_NS = 1_700_000_000_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(
    source: ScriptedSource | None = None, store: ScriptedStore | None = None, cfg: MdConfig = CFG
) -> MdService:
    scripted = source or ScriptedSource()
    return MdService(
        cfg, store or ScriptedStore(), lambda on_assign, on_revoke: scripted, clock_ns=lambda: NOW_NS
    )


REWINDER: Rewinder = ScriptedSource()  # the intake's view of the source: checked by mypy


# --- status ---------------------------------------------------------------------------


def test_status_reports_role_links_and_ownership_in_the_status_bus_words() -> None:
    service = make()
    service.ownership.own([0, 1], "md-test/aaaaaaaa")
    service.ownership.follow(2, None)
    service.ownership.own([3], "md-test/bbbbbbbb")
    service.ownership.mark_fenced(3)
    status = service.status()
    assert status["role"] == "active"
    assert (status["redis"], status["redis_down_s"]) == ("up", None)
    assert (status["kafka"], status["kafka_down_s"]) == ("unknown", None)  # no link: a scripted source
    assert status["partitions"] == [0, 1] and status["following"] == [2, 3]
    assert status["partitions_fenced"] == [3] and status["pairs"] == 0
    assert status["counters"]["windows"] == 0 and status["counters"]["invalid"] == {}
    assert decode_status(encode_status({"v": 1, "kind": "md", **status})) is not None  # JSON as it is
    assert make(cfg=replace(CFG, standby=True)).status()["role"] == "standby"


def test_status_says_how_long_each_link_has_been_down() -> None:
    clock = Clock()
    link = KafkaLink(2.0, 13.0, clock)  # down since start until the brokers answer
    service = make(ScriptedSource(link))
    clock.now += 4.25
    service.redis_down_since = time.monotonic() - 3.0
    status = service.status()
    assert (status["kafka"], status["kafka_down_s"]) == ("down", 4.2)
    assert status["redis"] == "down" and 3.0 <= status["redis_down_s"] < 4.0
    link.down_since = None
    assert (service.status()["kafka"], service.status()["kafka_down_s"]) == ("up", None)


def test_a_kafka_client_error_is_counted_and_named_in_the_status() -> None:
    link = KafkaLink(2.0, 13.0, Clock())
    service = make(ScriptedSource(link))
    assert link.on_error is not None
    link.on_error("broker transport failure")
    link.on_error("all brokers down")
    status = service.status()
    assert status["counters"]["kafka_errors"] == 2 and status["kafka_last_error"] == "all brokers down"


# --- Redis with retry -------------------------------------------------------------------


def flaky(failures: int, result: str = "ok"):
    calls = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise redis.ConnectionError("connection refused")
        return result

    return call, calls


def test_retry_until_redis_answers_counts_each_failure_and_ends_the_outage() -> None:
    service = make()
    call, calls = flaky(2)
    assert service._retry("a test", call) == "ok"
    assert len(calls) == 3 and service.counters.redis_errors == 2
    assert service.redis_down_since is None and service.status()["redis"] == "up"


def test_retry_gives_up_past_its_deadline_and_the_outage_goes_on() -> None:
    service = make()
    call, calls = flaky(100)
    assert service._retry("a test", call, deadline=time.monotonic() + 0.05) is None
    assert 1 <= len(calls) < 100 and service.counters.redis_errors == len(calls)
    assert service.redis_down_since is not None and service.status()["redis"] == "down"
    assert service._retry("a test", lambda: "back") == "back" and service.redis_down_since is None


def test_retry_gives_up_at_once_when_stopped() -> None:
    service = make()
    service.stop()
    call, calls = flaky(100)
    assert service._retry("a test", call) is None and len(calls) == 1


def test_other_errors_are_not_redis_trouble() -> None:
    service = make()

    def broken() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        service._retry("a test", broken)
    assert service.counters.redis_errors == 0 and service.redis_down_since is None


# --- write marks: Redis behind what it confirmed ------------------------------------------


class Marks:
    """WriteMarks' read: the write counter this instance saw confirmed, per (partition, dataset)."""

    def __init__(self, seen: dict[tuple[int, str], int]) -> None:
        self.seen = seen

    def read(self, partition: int, dataset: str) -> int | None:
        return self.seen.get((partition, dataset))


def test_a_claim_behind_the_confirmed_writes_is_found_per_partition_and_dataset() -> None:
    service = make()
    service.marks = Marks({(0, "d0"): 10, (1, "d1"): 5, (2, "old"): 99, (3, "d3"): 50})  # type: ignore[assignment]
    claim = Claim(
        offsets={0: 1, 1: 1, 2: 1, 3: 1}, pairs={},
        datasets={0: "d0", 1: "d1", 2: "d2", 3: "d3"}, writes={0: 9, 1: 5, 2: 0, 3: 40},
    )  # fmt: skip
    # 0: Redis holds 9 of the 10 confirmed; 1: all of them; 2: another dataset (Redis was
    # replaced, its own counter starts anew); 3: behind, but not among the partitions asked.
    assert service._behind(claim, [0, 1, 2]) == {0}
    assert service.counters.writes_lost == 1


def test_without_write_marks_nothing_is_behind() -> None:
    service = make()
    assert service.marks is None  # CFG.state_dir is ""
    assert service._behind(Claim({0: 1}, {}, {0: "d"}, {0: 0}), [0]) == set()


# --- ticks ----------------------------------------------------------------------------------


class Cadence:
    """WindowCadence's ``due`` and ``slots``: one scripted tick."""

    def __init__(self, tick: Tick | None, slots: int = 2) -> None:
        self.tick, self.slots = tick, slots

    def due(self, now: float) -> Tick | None:
        return self.tick


class Writes:
    """WindowWrites.write, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[bool, list[int]]] = []

    def write(
        self, check: bool, deadline: float | None = None, partitions: Collection[int] | None = None
    ) -> bool:
        self.calls.append((check, sorted(partitions or ())))
        return True


def stream_with_a_change(pair: str, partition: int) -> PairStream:
    stream = PairStream(pair, "e1", stored=StreamPosition("e1", 0), partition=partition)
    stream.apply(1, 1_000, [("b", 100_00, 5)])
    return stream


def test_a_tick_writes_the_owned_partitions_of_its_slots_and_drops_the_followed_ones_windows() -> None:
    service = make()
    writes = service.windows = Writes()  # type: ignore[assignment]
    service.ownership.own([0, 1], "md-test/aaaaaaaa")
    service.ownership.follow(2, 0)
    service.ownership.follow(3, 0)
    for pair, p in (("BTC-USD", 0), ("ETH-USD", 1), ("SOL-USD", 2), ("XRP-USD", 3)):
        service.ownership.add_stream(stream_with_a_change(pair, p))
    service._tick(Cadence(Tick(frozenset({0}), check=True)))  # type: ignore[arg-type]
    assert writes.calls == [(True, [0])]  # slot 0 of 2: partitions 0 and 2; 2 is only followed
    streams = service.streams
    assert streams["SOL-USD"].window.is_empty()  # a follower publishes nothing
    assert not streams["XRP-USD"].window.is_empty()  # slot 1: not its turn
    assert not streams["BTC-USD"].window.is_empty() and service.counters.windows_late == 0


def test_a_late_tick_is_counted_and_no_tick_writes_nothing() -> None:
    service = make()
    writes = service.windows = Writes()  # type: ignore[assignment]
    service.ownership.own([1], "md-test/aaaaaaaa")
    service._tick(Cadence(Tick(frozenset({0, 1}), check=False, late=True)))  # type: ignore[arg-type]
    assert writes.calls == [(False, [1])] and service.counters.windows_late == 1
    service._tick(Cadence(None))  # type: ignore[arg-type]
    assert len(writes.calls) == 1


# --- a window written: what the service counts and times ------------------------------------


def test_a_written_window_is_counted_committed_and_timed_once_per_delta() -> None:
    store = ScriptedStore()
    source = ScriptedSource()
    service = make(source, store)
    service.ownership.own([0, 1], "md-test/aaaaaaaa")
    service.ownership.partitions[0].position = 42
    service.ownership.add_stream(stream_with_a_change("BTC-USD", 0))
    service.ownership.add_stream(stream_with_a_change("ETH-USD", 1))
    assert service.write_window(check=False)
    assert store.windows == [([0, 1], ["BTC-USD", "ETH-USD"])]
    c = service.counters
    assert (c.windows, c.deltas) == (1, 2) and source.committed == [{0: 42}]
    latency = c.latency.histograms
    assert latency["close_to_publish"].count == 2 and latency["exchange_to_close"].count == 2
    assert c.latency.build.count == 1  # per write
    assert latency["close_to_publish"].percentile(100) == 0  # acked on the same (fake) clock as closed
    assert c.as_dict()["publish_ms_p99"] == 0.0


# --- a standby's start ------------------------------------------------------------------------


class Follows:
    """Leases.follow, recorded."""

    def __init__(self) -> None:
        self.asked: list[list[int]] = []

    def follow(self, partitions: list[int]) -> bool:
        self.asked.append(list(partitions))
        return True


def test_a_standby_follows_the_partitions_it_was_given() -> None:
    service = make(cfg=replace(CFG, standby=True, partitions=(1, 3)))
    leases = service.leases = Follows()  # type: ignore[assignment]
    assert service._start_following() and leases.asked == [[1, 3]]


def test_a_standby_of_every_partition_waits_until_the_topic_names_them() -> None:
    service = make(ScriptedSource(found=[None, [], [0, 1, 2, 3]]), cfg=replace(CFG, standby=True))
    leases = service.leases = Follows()  # type: ignore[assignment]
    assert service._start_following() and leases.asked == [[0, 1, 2, 3]]


def test_a_standby_stopped_before_the_topic_answers_follows_nothing() -> None:
    service = make(cfg=replace(CFG, standby=True))
    leases = service.leases = Follows()  # type: ignore[assignment]
    service.stop()
    assert not service._start_following() and leases.asked == []
