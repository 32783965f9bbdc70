"""Binance dialect settings: defaults, environment, and refusals that name the key."""

from __future__ import annotations

import pytest

from gateway.binance.config import PING_INTERVAL_S, PING_TIMEOUT_S, BinanceConfig, load_binance_config
from mdcore.settings import SettingError


def test_defaults_follow_binance() -> None:
    cfg = load_binance_config({})
    assert cfg == BinanceConfig()
    assert (cfg.enabled, cfg.prefix, cfg.port) == (True, "/binance", None)
    assert (cfg.weight_limit, cfg.max_streams, cfg.msg_rate) == (6000, 1024, 5.0)
    assert (cfg.ping_interval_s, cfg.ping_timeout_s) == (PING_INTERVAL_S, PING_TIMEOUT_S) == (20.0, 60.0)


def test_environment_overrides() -> None:
    cfg = load_binance_config(
        {
            "BOOKCAST_BINANCE": "off",
            "BOOKCAST_BINANCE_PREFIX": "/",
            "BOOKCAST_BINANCE_PORT": "9443",
            "BOOKCAST_BINANCE_WEIGHT_LIMIT": "1200",
            "BOOKCAST_BINANCE_MAX_STREAMS": "200",
            "BOOKCAST_BINANCE_MSG_RATE": "10",
        }
    )
    assert (cfg.enabled, cfg.prefix, cfg.port, cfg.weight_limit, cfg.max_streams, cfg.msg_rate) == (
        False, "", 9443, 1200, 200, 10.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"BOOKCAST_BINANCE": "maybe"}, "BOOKCAST_BINANCE="),
        (
            {"BOOKCAST_BINANCE_PREFIX": ""},
            "BOOKCAST_BINANCE_PREFIX may be empty only with BOOKCAST_BINANCE_PORT",
        ),
        ({"BOOKCAST_BINANCE_PREFIX": "binance"}, "BOOKCAST_BINANCE_PREFIX="),
        ({"BOOKCAST_BINANCE_PORT": "70000"}, "BOOKCAST_BINANCE_PORT="),
        ({"BOOKCAST_BINANCE_WEIGHT_LIMIT": "0"}, "BOOKCAST_BINANCE_WEIGHT_LIMIT="),
        ({"BOOKCAST_BINANCE_MSG_RATE": "nan"}, "BOOKCAST_BINANCE_MSG_RATE="),
    ],
)
def test_bad_settings_fail_fast_naming_the_key(env, key) -> None:
    with pytest.raises(SettingError, match=key):
        load_binance_config(env)
