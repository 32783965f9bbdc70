"""The drawn layout of ``bookcast load --zipf``: popularity, ranges, all-pairs clients, groups."""

from __future__ import annotations

from collections import Counter

import pytest

from clients.load.config import build_parser, drawn_pairs, layout, load_config, plan_workers, zipf_weights
from feed_simulator.scenario import zipf_weights as feed_zipf_weights
from mdcore.instruments import default_pairs
from mdcore.settings import SettingError

ENV = {"BOOKCAST_URL": "ws://127.0.0.1:9/ws"}
POOL = tuple(default_pairs(200))


def config(*argv):
    return load_config(build_parser().parse_args(list(argv)), ENV)


def test_clients_want_the_pairs_the_feed_makes_hot():
    assert zipf_weights(200, 1.0) == pytest.approx(feed_zipf_weights(200, 1.0))
    assert zipf_weights(50, 1.3) == pytest.approx(feed_zipf_weights(50, 1.3))


def test_drawn_pairs_are_distinct_in_range_and_follow_popularity():
    picks = [drawn_pairs(i, POOL, 1, 5, 1.0, seed=1) for i in range(4000)]
    assert all(1 <= len(p) <= 5 and len(set(p)) == len(p) for p in picks)
    assert Counter(len(p) for p in picks).keys() == {1, 2, 3, 4, 5}
    assert sum(len(p) for p in picks) / len(picks) == pytest.approx(3.0, abs=0.1)
    wanted = Counter(pair for p in picks for pair in p)
    assert wanted.most_common(1)[0][0] == "BTC-USD"
    assert wanted["BTC-USD"] > 5 * wanted[POOL[20]] > 0  # the hot pairs are wanted most
    assert sum(wanted[p] for p in POOL[:10]) > sum(wanted[p] for p in POOL[100:])
    assert all(p == tuple(sorted(p, key=POOL.index)) for p in picks[:50])  # in popularity order


def test_draws_depend_on_the_seed_and_the_index_only():
    assert drawn_pairs(7, POOL, 1, 5, 1.0, seed=3) == drawn_pairs(7, POOL, 1, 5, 1.0, seed=3)
    assert [drawn_pairs(i, POOL, 3, 3, 1.0, seed=3) for i in range(20)] != [
        drawn_pairs(i, POOL, 3, 3, 1.0, seed=4) for i in range(20)
    ]


def test_a_steep_exponent_still_gives_distinct_pairs():
    pairs = drawn_pairs(0, POOL[:10], 10, 10, 8.0, seed=1)  # rejection alone would rarely find all 10
    assert sorted(pairs) == sorted(POOL[:10])
    assert drawn_pairs(0, POOL, 5, 5, 0.0, seed=1) != drawn_pairs(0, POOL, 5, 5, 8.0, seed=1)


def test_the_layout_adds_all_pairs_clients_and_names_groups():
    cfg = config("--connections", "30", "--pairs", "1-5", "--zipf", "1", "--all-pairs", "2", "--pool", "200")
    assert (cfg.pairs_per_connection, cfg.pairs_max, cfg.zipf, cfg.all_pairs) == (1, 5, 1.0, 2)
    assert cfg.total_connections == 32
    rows = layout(cfg, POOL)
    assert [g for _, g in rows] == ["drawn"] * 30 + ["all-pairs"] * 2
    assert rows[-1][0] == POOL
    plans = plan_workers(cfg, POOL)
    specs = sorted((s for p in plans for s in p.specs), key=lambda s: s.index)
    assert [s.index for s in specs] == list(range(32))
    assert [s.group for s in specs[-2:]] == ["all-pairs", "all-pairs"]
    every = load_config(
        build_parser().parse_args(["--all-pairs", "3", "--verify-sample", "1", "--pool", "9"]), ENV
    )
    assert [s.verify for p in plan_workers(every, POOL[:9]) for s in p.specs if s.group == "all-pairs"] == [
        False
    ] * 3
    assert config("--connections", "3").total_connections == 3
    assert {g for _, g in layout(config("--connections", "3", "--pairs", "2"), POOL)} == {"spread"}
    assert {g for _, g in layout(config("--connections", "3", "--pairs", "BTC-USD"), POOL)} == {"listed"}


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--pairs", "1-5"], "give --zipf"),
        (["--pairs", "5-1", "--zipf", "1"], "must go up"),
        (["--pairs", "0-3", "--zipf", "1"], "--pairs"),
        (["--zipf", "-1"], "--zipf"),
        (["--zipf", "nan"], "--zipf"),
        (["--pairs", "BTC-USD", "--zipf", "1"], "not names"),
        (["--all-pairs", "-1"], "--all-pairs"),
    ],
)
def test_bad_layout_settings_name_the_flag(argv, fragment):
    with pytest.raises(SettingError, match=fragment):
        config(*argv)


def test_more_pairs_than_the_pool_is_refused():
    cfg = config("--pairs", "1-5", "--zipf", "1")
    with pytest.raises(SettingError, match="more than the 3 pairs"):
        layout(cfg, POOL[:3])
