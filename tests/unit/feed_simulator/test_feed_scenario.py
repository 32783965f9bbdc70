"""Scenarios: pair shares, the hot pair, and how pairs are spread over processes."""

from collections import Counter, defaultdict

import pytest

from feed_simulator.market import MarketParams, build_markets
from feed_simulator.pacing import BurstySchedule, RoundRobin, SteadySchedule, WeightedPicker
from feed_simulator.scenario import HOT_SHARE, SCENARIOS, split_pairs
from feed_simulator.source import EventSource
from mdcore.instruments import default_pairs

PAIRS = tuple(default_pairs(8))


def test_every_scenario_is_listed_with_its_shape():
    assert set(SCENARIOS) == {"steady", "bursty", "hot-pair", "mixed", "zipf"}
    assert isinstance(SCENARIOS["steady"].schedule(100, 1), SteadySchedule)
    assert isinstance(SCENARIOS["bursty"].schedule(100, 1), BurstySchedule)
    assert isinstance(SCENARIOS["mixed"].schedule(100, 1), BurstySchedule)
    assert SCENARIOS["steady"].weights(PAIRS) == [1 / 8] * 8
    assert isinstance(SCENARIOS["steady"].picker([1 / 8] * 8, 1), RoundRobin)


@pytest.mark.parametrize("name", ["hot-pair", "mixed"])
def test_the_hot_pair_carries_half_of_all_events(name):
    scenario = SCENARIOS[name]
    weights = scenario.weights(PAIRS)
    assert weights[0] == HOT_SHARE == 0.5
    assert sum(weights) == pytest.approx(1.0)
    picker = scenario.picker(weights, seed=4)
    assert isinstance(picker, WeightedPicker)
    source = EventSource(build_markets(PAIRS, 4, MarketParams(max_levels=20)), picker)
    counts = Counter(source.next_event(1).pair for _ in range(20_000))
    assert counts[PAIRS[0]] / 20_000 == pytest.approx(0.5, abs=0.02)
    others = [counts[p] / 20_000 for p in PAIRS[1:]]
    assert all(share == pytest.approx(0.5 / 7, abs=0.01) for share in others)


def test_one_pair_alone_is_not_hot():
    assert SCENARIOS["hot-pair"].weights(["BTC-USD"]) == [1.0]


def test_split_pairs_balances_the_load_and_keeps_each_pair_in_one_process():
    weights = SCENARIOS["hot-pair"].weights(PAIRS)
    parts = split_pairs(PAIRS, weights, 2)
    assert parts == [[0], [1, 2, 3, 4, 5, 6, 7]]  # the hot pair alone carries as much as the rest
    parts = split_pairs(PAIRS, SCENARIOS["steady"].weights(PAIRS), 3)
    assert sorted(i for part in parts for i in part) == list(range(8))
    assert sorted(len(part) for part in parts) == [2, 3, 3]
    assert split_pairs(PAIRS[:2], [0.5, 0.5], 5) == [[0], [1]]  # never an empty process
    with pytest.raises(ValueError):
        split_pairs(PAIRS, [1 / 8] * 8, 0)


def test_a_pair_generates_the_same_events_whichever_process_runs_it():
    """Per-pair markets are seeded by pair: splitting the run changes the interleaving only."""

    def per_pair(sources, count):
        events = defaultdict(list)
        for source in sources:
            for _ in range(count):
                event = source.next_event(7)
                events[event.pair].append(event.value)
        return events

    params = MarketParams(max_levels=20)
    whole = per_pair([EventSource(build_markets(PAIRS, 3, params))], 800)
    halves = per_pair(
        [EventSource(build_markets(PAIRS[:4], 3, params)), EventSource(build_markets(PAIRS[4:], 3, params))],
        400,
    )
    assert whole == halves
