"""The zipf scenario: a few hot pairs carry most events, the exponent travels in the name."""

from collections import Counter

import pytest

from feed_simulator.config import FeedConfig, parse_config
from feed_simulator.market import MarketParams, build_markets
from feed_simulator.pacing import SteadySchedule, WeightedPicker
from feed_simulator.parallel import plans_for
from feed_simulator.scenario import SCENARIOS, ZIPF_EXPONENT, zipf_name, zipf_weights
from feed_simulator.source import EventSource
from mdcore.instruments import default_pairs
from mdcore.settings import SettingError

ENV = {"KAFKA_BOOTSTRAP": "127.0.0.1:9092"}
PAIRS = tuple(default_pairs(200))


def test_weights_fall_as_one_over_the_rank():
    weights = zipf_weights(200)
    assert sum(weights) == pytest.approx(1.0)
    assert weights[0] / weights[1] == pytest.approx(2.0)
    assert weights[0] / weights[9] == pytest.approx(10.0)
    assert sum(weights[:10]) == pytest.approx(0.498, abs=0.001)  # the top 10 of 200 carry half
    steeper = zipf_weights(200, 1.5)
    assert steeper[0] > weights[0] and steeper[0] / steeper[3] == pytest.approx(8.0)
    assert zipf_weights(1) == [1.0]
    with pytest.raises(ValueError):
        zipf_weights(0)


def test_the_exponent_travels_in_the_name():
    assert SCENARIOS["zipf"].zipf == ZIPF_EXPONENT
    assert SCENARIOS["zipf:1.3"].zipf == 1.3
    assert SCENARIOS["zipf:1"].name == "zipf"
    assert zipf_name(ZIPF_EXPONENT) == "zipf" and zipf_name(0.8) == "zipf:0.8"
    for bad in ("zipf:", "zipf:0", "zipf:-1", "zipf:nan", "zipf:99", "zipf:x", "pareto:1"):
        assert bad not in SCENARIOS
    assert isinstance(SCENARIOS["zipf"].schedule(100, 1), SteadySchedule)


def test_events_follow_the_shares_and_the_seed_fixes_the_stream():
    scenario = SCENARIOS["zipf"]
    pairs = PAIRS[:20]
    weights = scenario.weights(pairs)
    picker = scenario.picker(weights, seed=5)
    assert isinstance(picker, WeightedPicker)
    params = MarketParams(max_levels=20)
    source = EventSource(build_markets(pairs, 5, params), picker)
    counts = Counter(source.next_event(1).pair for _ in range(30_000))
    for rank in (0, 1, 4, 19):
        assert counts[pairs[rank]] / 30_000 == pytest.approx(weights[rank], abs=0.01)

    def stream(seed):
        run = EventSource(build_markets(pairs, 5, params), scenario.picker(weights, seed=seed))
        return [run.next_event(1).pair for _ in range(500)]

    assert stream(5) == stream(5)
    assert stream(5) != stream(6)


def test_processes_split_the_zipf_rate_by_share():
    cfg = FeedConfig("unused:1", pairs=PAIRS, rate=3000.0, scenario="zipf", processes=2)
    plans = plans_for(cfg)
    assert sum(p.rate for p in plans) == pytest.approx(3000.0)
    assert sorted(pair for p in plans for pair in p.pairs) == sorted(PAIRS)
    assert max(p.rate for p in plans) / min(p.rate for p in plans) < 1.1  # balanced by share


def test_settings_fold_the_exponent_into_the_scenario():
    assert parse_config(["--scenario", "zipf"], ENV).scenario == "zipf"
    assert parse_config(["--scenario", "zipf", "--zipf-exponent", "1.2"], ENV).scenario == "zipf:1.2"
    assert parse_config(["--scenario", "zipf:0.8"], ENV).scenario == "zipf:0.8"
    env = {**ENV, "BOOKCAST_FEED_SCENARIO": "zipf", "BOOKCAST_FEED_ZIPF_EXPONENT": "1.5"}
    assert parse_config([], env).scenario == "zipf:1.5"
    assert parse_config(["--zipf-exponent", "2"], env).scenario == "zipf:2"
    assert parse_config(["--scenario", "steady"], env).scenario == "steady"  # the variable is zipf's only


@pytest.mark.parametrize(
    ("argv", "env", "fragment"),
    [
        (["--scenario", "zipf", "--zipf-exponent", "0"], ENV, "--zipf-exponent=0.0 must be within"),
        (["--scenario", "zipf", "--zipf-exponent", "inf"], ENV, "--zipf-exponent"),
        (["--scenario", "steady", "--zipf-exponent", "1.2"], ENV, "goes with --scenario zipf"),
        (["--scenario", "zipf:1.2", "--zipf-exponent", "1.3"], ENV, "goes with --scenario zipf"),
        (["--scenario", "zipf:0"], ENV, "--scenario='zipf:0' is not one of"),
        ([], {**ENV, "BOOKCAST_FEED_SCENARIO": "zipf", "BOOKCAST_FEED_ZIPF_EXPONENT": "-1"}, "ZIPF_EXPONENT"),
        ([], {**ENV, "BOOKCAST_FEED_SCENARIO": "nope"}, "BOOKCAST_FEED_SCENARIO='nope'"),
    ],
)
def test_bad_zipf_settings_name_the_key(argv, env, fragment):
    with pytest.raises(SettingError) as info:
        parse_config(argv, env)
    assert fragment in str(info.value)
