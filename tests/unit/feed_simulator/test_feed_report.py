"""The achieved-rate report is honest: confirmed data only, and a shortfall said out loud."""

import orjson
import pytest

from feed_simulator.config import FeedConfig
from feed_simulator.market import MarketParams
from feed_simulator.producer import pump
from feed_simulator.report import FeedReport, merge_reports
from tests.unit.feed_simulator.feed_fakes import FakeProducer

PARAMS = MarketParams(max_levels=30)


def config(**overrides):
    values = {"kafka_bootstrap": "unused:1", "topic": "t", "pairs": ("BTC-USD", "ETH-USD"), "seed": 3}
    return FeedConfig(**{**values, **overrides})


def test_an_impossible_rate_is_reported_as_not_kept_up():
    report = pump(config(rate=1e9, duration=0.3), FakeProducer(), params=PARAMS)
    assert report.requested_rate == 1e9
    assert report.events_per_s == report.delivered_events / report.elapsed
    assert report.events_per_s < 1e9 * 0.97
    assert not report.kept_up
    assert "could NOT keep up" in report.summary()
    assert report.as_dict()["kept_up"] is False


def test_a_modest_rate_is_met_and_reported_as_such():
    report = pump(config(rate=400.0, duration=0.5), FakeProducer(), params=PARAMS)
    assert report.kept_up
    assert "could NOT" not in report.summary()


def test_unconfirmed_messages_count_for_nothing():
    producer = FakeProducer(lose_on_flush=10**9)  # the broker never answers
    report = pump(config(rate=1e9), producer, max_events=300, params=PARAMS)
    assert report.produced_events == 300
    assert (report.delivered_events, report.delivered_changes) == (0, 0)
    assert report.undelivered_events == 300
    assert report.events_per_s == report.changes_per_s == 0.0


def test_the_json_report_has_the_rates_and_the_counts():
    report = pump(config(rate=1e9, scenario="bursty"), FakeProducer(), max_events=500, params=PARAMS)
    body = orjson.loads(orjson.dumps(report.as_dict()))
    assert body["delivered_events"] == 500
    assert body["changes_per_s"] == pytest.approx(report.changes_per_s, rel=1e-3)
    assert body["changes_per_event"] == pytest.approx(report.delivered_changes / 500, rel=1e-3)
    assert (body["scenario"], body["mode"], body["seed"], body["pairs"]) == ("bursty", "live", 3, 2)
    assert report.cpu_seconds > 0
    assert body["changes_per_cpu_s"] == pytest.approx(report.delivered_changes / report.cpu_seconds, rel=1e-3)


def test_parallel_reports_merge_over_the_common_time():
    one = FeedReport(1, 100.0, 2.0, 200, 190, 900, 1, 9, injected={"duplicate": 2}, pairs=3, cpu_seconds=1.0)
    two = FeedReport(
        1,
        100.0,
        2.5,
        250,
        250,
        1000,
        0,
        0,
        injected={"duplicate": 1, "malformed": 4},
        pairs=5,
        cpu_seconds=1.5,
    )
    merged = merge_reports([one, two], elapsed=2.5, requested_rate=200.0)
    assert (merged.delivered_events, merged.delivered_changes, merged.processes) == (440, 1900, 2)
    assert merged.changes_per_s == 1900 / 2.5
    assert merged.injected == {"duplicate": 3, "malformed": 4}
    assert (merged.failed_events, merged.undelivered_events, merged.pairs) == (1, 9, 8)
    assert not merged.kept_up  # 176 events/s of 200 asked for
    assert merged.cpu_seconds == 2.5 and merged.changes_per_cpu_s == 1900 / 2.5
