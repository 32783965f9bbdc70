"""Settings of the feed: environment, flags that override it, and fast failures."""

import pytest

from feed_simulator.config import parse_config
from mdcore.instruments import NAMED_PAIRS
from mdcore.settings import SettingError

ENV = {"KAFKA_BOOTSTRAP": "127.0.0.1:9092"}


def test_defaults():
    cfg = parse_config([], ENV)
    assert cfg.kafka_bootstrap == "127.0.0.1:9092"
    assert cfg.topic == "bookcast.deltas"
    assert cfg.partitions == 8
    assert cfg.pairs == NAMED_PAIRS
    assert cfg.rate == 200.0
    assert cfg.duration is None
    assert cfg.seed is None
    assert cfg.max_levels == 500
    assert cfg.compression == "lz4"


def test_environment():
    env = {
        **ENV,
        "BOOKCAST_TOPIC": "t1",
        "BOOKCAST_PARTITIONS": "3",
        "BOOKCAST_PAIRS": "ETH-USD, BTC-USD",
        "BOOKCAST_FEED_RATE": "1500.5",
        "BOOKCAST_FEED_SEED": "77",
    }
    cfg = parse_config([], env)
    assert (cfg.topic, cfg.partitions, cfg.pairs, cfg.rate, cfg.seed) == (
        "t1",
        3,
        ("ETH-USD", "BTC-USD"),
        1500.5,
        77,
    )


def test_flags_override_the_environment():
    env = {**ENV, "BOOKCAST_FEED_RATE": "10", "BOOKCAST_PAIRS": "BTC-USD", "BOOKCAST_FEED_SEED": "1"}
    argv = ["--rate", "5000", "--pairs", "10", "--seed", "2", "--duration", "1.5", "--topic", "x"]
    argv += ["--bootstrap", "h:1", "--partitions", "2", "--max-levels", "20", "--compression", "none"]
    cfg = parse_config(argv, env)
    assert cfg.rate == 5000
    assert cfg.pairs == (*NAMED_PAIRS, "SYN000-USD", "SYN001-USD")
    assert (cfg.seed, cfg.duration, cfg.topic, cfg.kafka_bootstrap) == (2, 1.5, "x", "h:1")
    assert (cfg.partitions, cfg.max_levels, cfg.compression) == (2, 20, "none")


@pytest.mark.parametrize(
    ("argv", "env", "fragment"),
    [
        ([], {}, "KAFKA_BOOTSTRAP is not set (`bookcast up`"),
        (["--rate", "0"], ENV, "--rate=0.0 must be"),
        (["--rate", "-3"], ENV, "--rate"),
        (["--rate", "inf"], ENV, "--rate"),
        ([], {**ENV, "BOOKCAST_FEED_RATE": "0"}, "BOOKCAST_FEED_RATE"),
        ([], {**ENV, "BOOKCAST_FEED_RATE": "fast"}, "BOOKCAST_FEED_RATE"),
        (["--pairs", "BTC-USD,NOPE-USD"], ENV, "unknown pair 'NOPE-USD'"),
        (["--pairs", "0"], ENV, "--pairs"),
        ([], {**ENV, "BOOKCAST_PAIRS": "FOO"}, "BOOKCAST_PAIRS"),
        (["--duration", "0"], ENV, "--duration"),
        (["--partitions", "0"], ENV, "--partitions"),
        (["--max-levels", "0"], ENV, "--max-levels"),
        ([], {**ENV, "BOOKCAST_FEED_SEED": "abc"}, "BOOKCAST_FEED_SEED"),
    ],
)
def test_bad_settings_name_the_key(argv, env, fragment):
    with pytest.raises(SettingError) as info:
        parse_config(argv, env)
    assert fragment in str(info.value)
