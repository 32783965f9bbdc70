"""A small recorded run and its replay into a fake producer, for the recording and replay tests."""

from feed_simulator.config import FeedConfig
from feed_simulator.faults import FaultRates
from feed_simulator.market import MarketParams
from feed_simulator.producer import pump
from feed_simulator.replay import replay, restamp
from tests.unit.feed_simulator.feed_fakes import FakeProducer

PAIRS = ("BTC-USD", "XRP-USD", "SYN002-USD")


PARAMS = MarketParams(max_levels=40)


NO_FAULTS = FaultRates()


def record(path, events=1_500, rate=1e9, faults=NO_FAULTS, scenario="hot-pair"):
    cfg = FeedConfig(
        "unused:1",
        topic="t",
        pairs=PAIRS,
        rate=rate,
        seed=21,
        scenario=scenario,
        faults=faults,
        record=str(path),
    )
    producer = FakeProducer()
    report = pump(cfg, producer, max_events=events, params=PARAMS)
    return report, [(key, value) for _, key, value in producer.produced]


def replayed(path, speed=0.0, **kwargs):
    cfg = FeedConfig("unused:1", topic="t2", replay=str(path), speed=speed)
    producer = FakeProducer()
    report = replay(cfg, producer, **kwargs)
    return report, [(key, value) for _, key, value in producer.produced]


def without_xts(messages):
    return [(key, restamp(value, 0)) for key, value in messages]
