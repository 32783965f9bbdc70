"""md_service.status: one interval's status from plain values, and the publisher's life cycle.

That a published status carries every documented field with the service's values (TTL, index,
rates, lag, latency of the interval) is ``test_obs_md_metrics.py``'s
``test_the_status_is_published_with_a_ttl_and_reports_the_interval_only``; reading statuses
back from a real Redis is ``tests/integration/test_gateway_health.py``'s and the md
integration tests' (``test_md_kafka_down.py``, ``test_md_failover.py``).
"""

from __future__ import annotations

from types import SimpleNamespace

from md_service.config import MdConfig
from md_service.service import MdService
from md_service.status import RATES, TOTALS, StatusConfig, StatusPublisher, md_status
from mdcore.latency import LatencyHistogram
from mdcore.status_bus import STATUS_VERSION
from tests.unit.md_service.md_fakes import ScriptedSource, ScriptedStore


def test_a_status_is_the_instances_state_plus_the_intervals_rates_totals_lag_and_latency() -> None:
    hist = LatencyHistogram()
    hist.record(2_000)
    state = {
        "role": "active",
        "partitions": [0, 1],
        "counters": {"events_applied": 300, "deltas": 40, "windows": 9},
    }
    before = {"events_applied": 100, "deltas": 40}
    status = md_status(
        "md-1", 1_700_000_000_000, 2.0, before, {1: 5, 0: 10}, {"close_to_publish": hist}, state
    )
    assert (status["v"], status["kind"], status["id"], status["t"]) == (
        STATUS_VERSION,
        "md",
        "md-1",
        1_700_000_000_000,
    )
    assert (
        status["role"] == "active"
        and status["partitions"] == [0, 1]
        and status["counters"] is state["counters"]
    )
    assert set(status["rates"]) == set(RATES)
    assert status["rates"]["events_per_s"] == 100.0 and status["rates"]["deltas_per_s"] == 0.0
    assert status["rates"]["windows_per_s"] == 4.5  # a counter absent before counts from 0
    assert status["totals"] == {name: state["counters"].get(name, 0) for name in TOTALS}
    assert status["consumer_lag"] == 15 and status["lag_by_partition"] == {"0": 10, "1": 5}
    assert status["latency"]["close_to_publish"]["count"] == 1


def test_an_unknown_lag_is_reported_as_unknown_not_as_zero() -> None:
    status = md_status("md-1", 0, 1.0, {}, None, {}, {})
    assert status["consumer_lag"] is None and status["lag_by_partition"] is None
    assert status["rates"] == dict.fromkeys(RATES, 0.0) and status["latency"] == {}


class Recorder:
    """The publisher's Redis client: status writes recorded, close noted."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.closed = False

    def pipeline(self, transaction: bool) -> SimpleNamespace:
        record = self.commands.append
        return SimpleNamespace(
            set=lambda *a, **k: record("set"), zadd=lambda *a, **k: record("zadd"),
            zremrangebyscore=lambda *a, **k: record("zremrangebyscore"), execute=lambda: record("execute"),
        )  # fmt: skip

    def close(self) -> None:
        self.closed = True


def publisher(interval_s: float) -> tuple[StatusPublisher, MdService, Recorder]:
    source = ScriptedSource()
    service = MdService(
        MdConfig("", "", instance="md-1"), ScriptedStore(), lambda on_assign, on_revoke: source
    )
    pub = StatusPublisher(service, "redis://127.0.0.1:1/0", "bc", StatusConfig(interval_s))
    recorder = Recorder()
    pub.client = recorder  # type: ignore[assignment]
    return pub, service, recorder


def test_interval_zero_publishes_nothing_not_even_at_the_stop() -> None:
    pub, _, recorder = publisher(0.0)
    pub.start()
    pub.stop()
    assert recorder.commands == [] and pub.published == 0 and recorder.closed


def test_each_status_counts_from_the_one_before() -> None:
    pub, service, _ = publisher(1.0)
    service.counters.events_applied = 7
    first = pub.build()
    service.counters.events_applied = 10
    second = pub.build()
    assert first["totals"]["events_applied"] == 7 and second["totals"]["events_applied"] == 10
    assert first["rates"]["events_per_s"] > 0
    assert pub._before["events_applied"] == 10  # the next interval starts here


def test_publish_once_writes_one_status_and_counts_it() -> None:
    pub, _, recorder = publisher(1.0)
    pub.publish_once()
    assert recorder.commands[0] == "set" and recorder.commands[-1] == "execute" and pub.published == 1
    pub.stop()  # never started: no last status, the client closed
    assert pub.published == 1 and recorder.closed
