"""The run loop (``pump``) against a fake producer: pacing, stop conditions and an honest report.

``run_feed``/``make_producer`` against a real broker are
tests/integration/test_feed_kafka.py and test_feed_modes.py.
"""

import threading

from feed_simulator.config import FeedConfig
from feed_simulator.producer import pump
from mdcore.events import decode_event
from tests.unit.feed_simulator.feed_fakes import FakeProducer


def config(**overrides):
    values = {"kafka_bootstrap": "unused:1", "topic": "t", "pairs": ("BTC-USD", "ETH-USD"), "seed": 3}
    return FeedConfig(**{**values, **overrides})


def test_max_events_are_produced_and_all_confirmations_counted():
    producer = FakeProducer(buffer_every=7)
    report = pump(config(rate=1e9), producer, max_events=500)
    assert report.produced_events == report.delivered_events == len(producer.produced) == 500
    assert producer.buffer_errors > 0  # BufferError was retried, not lost
    values = [decode_event(v) for _, _, v in producer.produced]
    assert report.delivered_changes == sum(len(e.changes) for e in values)
    assert {k for _, k, _ in producer.produced} == {b"BTC-USD", b"ETH-USD"}
    assert (report.failed_events, report.undelivered_events, report.seed) == (0, 0, 3)
    assert report.events_per_s == report.delivered_events / report.elapsed


def test_failures_and_unconfirmed_events_are_not_reported_as_delivered():
    producer = FakeProducer(fail_every=4, lose_on_flush=3)
    report = pump(config(rate=1e9), producer, max_events=203)
    assert report.produced_events == 203
    assert report.undelivered_events == 3
    assert report.failed_events == 50
    assert report.delivered_events == 150
    assert "delivered 150 events" in report.summary()


def test_the_requested_rate_paces_the_loop():
    report = pump(config(rate=400.0, duration=0.5), FakeProducer())
    # 0.5 s at 400/s is 200 events (+1 at t=0); allow for a slow machine, never for more.
    assert 150 <= report.produced_events <= 201
    assert report.elapsed >= 0.5


def test_stop_ends_the_run_promptly():
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    try:
        report = pump(config(rate=50.0), FakeProducer(), stop=stop)
    finally:
        timer.cancel()
    assert stop.is_set()
    assert report.elapsed < 1.0
    assert 5 <= report.produced_events <= 12
