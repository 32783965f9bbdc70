"""``bookcast load`` settings: flags and environment, the pairs each connection follows, the plan
(including the drawn ``--zipf`` layout)."""

from __future__ import annotations

from collections import Counter

import pytest

from clients.load.config import (
    LoadConfig,
    build_parser,
    drawn_pairs,
    http_url,
    layout,
    load_config,
    pairs_for,
    plan_workers,
    verifies,
    zipf_weights,
)
from feed_simulator.scenario import zipf_weights as feed_zipf_weights
from mdcore.instruments import default_pairs
from mdcore.settings import SettingError

ENV = {"BOOKCAST_URL": "ws://127.0.0.1:9/ws"}
POOL = tuple(default_pairs(200))


def config(*argv, env=ENV):
    return load_config(build_parser().parse_args(list(argv)), env)


def test_defaults_and_flags():
    cfg = config()
    assert cfg.urls == ("ws://127.0.0.1:9/ws",)
    assert (cfg.connections, cfg.pairs_per_connection, cfg.pairs, cfg.pool, cfg.duration) == (
        100,
        1,
        None,
        None,
        10.0,
    )
    cfg = config(
        "--url", "ws://a:1/ws,ws://b:2/ws", "--url", "ws://c:3/ws", "--connections", "7", "--pairs", "3",
        "--pool", "5", "--duration", "2.5", "--processes", "3", "--ramp", "100", "--verify-sample", "0.5",
        "--json", "x.json",
    )  # fmt: skip
    assert cfg.urls == ("ws://a:1/ws", "ws://b:2/ws", "ws://c:3/ws")
    assert (cfg.connections, cfg.pairs_per_connection, cfg.duration, cfg.processes) == (7, 3, 2.5, 3)
    assert cfg.pool == ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD")
    assert (cfg.ramp, cfg.verify_sample, cfg.json_report, cfg.worker_count) == (100.0, 0.5, "x.json", 3)
    listed = config("--pairs", "BTC-USD,ETH-USD")
    assert (listed.pairs, listed.pairs_per_connection) == (("BTC-USD", "ETH-USD"), 2)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--url", "http://x/ws"], "--url"),
        (["--connections", "0"], "--connections"),
        (["--pairs", "NOPE-USD"], "unknown pair"),
        (["--pairs", "0"], "--pairs"),
        (["--duration", "0"], "--duration"),
        (["--verify-sample", "2"], "--verify-sample"),
        (["--ramp", "-1"], "--ramp"),
    ],
)
def test_bad_settings_name_the_flag(argv, fragment):
    with pytest.raises(SettingError, match=fragment):
        config(*argv)


def test_every_pair_gets_its_share_of_subscribers():
    pool = ("A-1", "B-2", "C-3", "D-4", "E-5")
    subscribers = Counter(p for i in range(100) for p in pairs_for(i, pool, 2))
    assert set(subscribers.values()) == {40}
    assert pairs_for(0, pool, 2) == ("A-1", "B-2")
    assert pairs_for(2, pool, 2) == ("E-5", "A-1")
    with pytest.raises(SettingError, match="more than the 5 pairs"):
        pairs_for(0, pool, 6)


def test_a_sample_of_connections_verifies_the_first_always():
    chosen = [i for i in range(1000) if verifies(i, 0.02)]
    assert chosen[:3] == [0, 50, 100] and len(chosen) == 20
    assert [i for i in range(10) if verifies(i, 0.0)] == [0]
    assert all(verifies(i, 1.0) for i in range(10))


def test_connections_are_dealt_over_processes_and_urls():
    cfg = LoadConfig(urls=("ws://a:1/ws", "ws://b:2/ws"), connections=7, pairs_per_connection=1, processes=3)
    plans = plan_workers(cfg, ("BTC-USD", "ETH-USD"))
    assert [len(p.specs) for p in plans] == [3, 2, 2]
    specs = sorted((s for p in plans for s in p.specs), key=lambda s: s.index)
    assert [s.url[5] for s in specs] == list("ababab" + "a")
    assert [s.pairs for s in specs[:3]] == [("BTC-USD",), ("ETH-USD",), ("BTC-USD",)]
    assert LoadConfig(urls=("ws://a:1/ws",), connections=2, processes=8).worker_count == 2


def test_source_addresses_are_dealt_round_robin():
    cfg = config("--connections", "5", "--source", "127.0.0.1,127.0.0.2", "--pool", "2", "--processes", "1")
    assert cfg.sources == ("127.0.0.1", "127.0.0.2")
    specs = plan_workers(cfg, cfg.pool)[0].specs
    assert [s.source for s in specs] == ["127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.2", "127.0.0.1"]
    assert plan_workers(config("--connections", "2", "--pool", "2"), ("BTC-USD",))[0].specs[0].source is None
    with pytest.raises(SettingError, match="--source"):
        config("--source", "localhost")


def test_http_url_follows_the_websocket_url():
    assert http_url("ws://127.0.0.1:8765/ws", "/pairs") == "http://127.0.0.1:8765/pairs"
    assert http_url("wss://example.com/ws", "/pairs") == "https://example.com:443/pairs"


# --- the drawn layout of --zipf --------------------


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
