"""The feed's exporter reads the running run's confirmed totals, whichever mode runs it."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from feed_simulator.metrics import FeedMetrics, MetricsConfig, load_metrics_config, running_totals
from feed_simulator.report import Progress


def samples(text: bytes) -> dict[str, float]:
    return {s.name: s.value for f in text_string_to_metric_families(text.decode()) for s in f.samples}


def test_the_exporter_shows_the_totals_of_the_newest_progress() -> None:
    previous = Progress.latest
    try:
        Progress.latest = None
        assert running_totals() is None
        before = samples(FeedMetrics().render())
        assert before["bookcast_feed_up"] == 0 and before["bookcast_feed_events_total"] == 0
        totals = [120, 560, 1]
        Progress(lambda: (totals[0], totals[1], totals[2]), 5.0, 0.0)
        metrics = FeedMetrics()
        got = samples(metrics.render())
        assert got["bookcast_feed_up"] == 1 and got["bookcast_feed_events_total"] == 120
        assert got["bookcast_feed_changes_total"] == 560 and got["bookcast_feed_failed_total"] == 1
        totals[0] = 300
        assert samples(metrics.render())["bookcast_feed_events_total"] == 300  # read at scrape time
        assert "process_cpu_seconds_total" in got
    finally:
        Progress.latest = previous


def test_settings_and_a_disabled_exporter() -> None:
    assert load_metrics_config({}) == MetricsConfig("127.0.0.1", 9102)
    assert load_metrics_config({"BOOKCAST_FEED_METRICS_PORT": "9300"}).port == 9300
    metrics = FeedMetrics(lambda: None)
    assert not metrics.serve(MetricsConfig(port=0)) and metrics.port is None
