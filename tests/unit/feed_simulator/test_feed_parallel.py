"""``--processes N``: the plan of each process and its share of ``max_events``.

Running the processes against a broker is tests/integration/test_feed_modes.py
(test_several_processes_keep_every_pair_in_order).
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feed_simulator.config import FeedConfig
from feed_simulator.parallel import plans_for, split_count
from feed_simulator.scenario import SCENARIOS
from mdcore.instruments import default_pairs

PAIRS = tuple(default_pairs(8))


def test_plans_split_the_rate_by_share():
    cfg = FeedConfig("unused:1", pairs=PAIRS, rate=1000.0, scenario="hot-pair", processes=3)
    plans = plans_for(cfg)
    assert [p.part for p in plans] == [0, 1, 2]
    assert sum(p.rate for p in plans) == pytest.approx(1000.0)
    assert plans[0].pairs == (PAIRS[0],) and plans[0].rate == pytest.approx(500.0)
    for plan in plans:
        assert sum(plan.weights) == pytest.approx(1.0)
    assert [len(p.pairs) for p in plans] == [1, 4, 3]
    assert split_count(1001, plans, 1000.0) == [501, 286, 214]
    assert split_count(None, plans, 1000.0) == [None, None, None]


@given(
    pairs=st.integers(1, 40),
    processes=st.integers(1, 6),
    scenario=st.sampled_from(sorted(SCENARIOS)),
    total=st.integers(0, 10**6),
)
def test_every_pair_runs_in_one_process_and_the_counts_add_up(pairs, processes, scenario, total):
    names = tuple(default_pairs(pairs))
    cfg = FeedConfig("unused:1", pairs=names, rate=1000.0, scenario=scenario, processes=processes)
    plans = plans_for(cfg)
    assert 1 <= len(plans) <= min(processes, pairs)
    assert sorted(p for plan in plans for p in plan.pairs) == sorted(names)
    assert sum(plan.rate for plan in plans) == pytest.approx(1000.0)
    counts = split_count(total, plans, cfg.rate)
    assert sum(counts) == total and all(count >= 0 for count in counts)
    for plan, count in zip(plans[1:], counts[1:], strict=True):
        assert count == int(total * plan.rate / cfg.rate)  # the first process takes the remainder


def test_one_process_runs_the_whole_plan():
    cfg = FeedConfig("unused:1", pairs=PAIRS, rate=250.0, scenario="steady", processes=1)
    (plan,) = plans_for(cfg)
    assert plan.pairs == PAIRS and plan.rate == pytest.approx(250.0) and plan.part == 0
    assert split_count(77, [plan], 250.0) == [77]
