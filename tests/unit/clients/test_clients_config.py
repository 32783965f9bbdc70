"""Settings of the clients tier: ClientOptions checked on creation, WatchConfig from flags and env."""

from __future__ import annotations

import dataclasses
from argparse import Namespace

import pytest

from clients.backoff import REFUSAL_BACKOFF, Backoff
from clients.config import DEFAULT_URL, ClientOptions, WatchConfig, check_url
from mdcore.settings import SettingError


def test_default_options_are_valid_and_frozen() -> None:
    options = ClientOptions()
    assert options.fail_fast and options.verify_checksums
    assert options.backoff == Backoff() and options.refusal_backoff == REFUSAL_BACKOFF
    # Half the gateway's default op budget (20/s, bursts of 40), so pacing never trips it.
    assert (options.op_rate, options.op_burst) == (10.0, 20)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.op_rate = 100  # type: ignore[misc]


@pytest.mark.parametrize("name", ["open_timeout", "close_timeout", "stable_after", "resync_retry", "op_rate"])
@pytest.mark.parametrize("value", [0, -1.0])
def test_times_and_rates_must_be_positive(name, value) -> None:
    with pytest.raises(ValueError, match=f"ClientOptions.{name} must be positive"):
        ClientOptions(**{name: value})


@pytest.mark.parametrize("name", ["update_buffer", "max_frame_size", "op_burst"])
def test_sizes_must_be_at_least_one(name) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ClientOptions(**{name: 0})
    assert getattr(ClientOptions(**{name: 1}), name) == 1


def test_keepalive_may_be_turned_off() -> None:
    options = ClientOptions(ping_interval=None, ping_timeout=None)
    assert options.ping_interval is None and options.ping_timeout is None


def test_check_url_accepts_websocket_urls_and_names_the_setting_otherwise() -> None:
    assert check_url("--url", "ws://h:1/ws") == "ws://h:1/ws"
    assert check_url("--url", "wss://h/ws") == "wss://h/ws"
    for bad in ("http://h/ws", "h:1/ws", ""):
        with pytest.raises(SettingError, match=r"^BOOKCAST_URL=.* is not a ws:// or wss:// URL"):
            check_url("BOOKCAST_URL", bad)


def args(pair="BTC-USD", url=None, depth=5, frames=None, once=False, interval=0.1) -> Namespace:
    """What ``bookcast watch``'s parser produces."""
    return Namespace(pair=pair, url=url, depth=depth, frames=frames, once=once, interval=interval)


def test_watch_defaults() -> None:
    assert WatchConfig.from_args(args(), {}) == WatchConfig("BTC-USD", DEFAULT_URL, 5, None, 0.1, "INFO")


def test_the_url_flag_wins_over_the_environment() -> None:
    env = {"BOOKCAST_URL": "ws://env:1/ws"}
    assert WatchConfig.from_args(args(), env).url == "ws://env:1/ws"
    assert WatchConfig.from_args(args(url="ws://flag:2/ws"), env).url == "ws://flag:2/ws"


def test_once_is_one_frame() -> None:
    assert WatchConfig.from_args(args(once=True), {}).frames == 1
    assert WatchConfig.from_args(args(frames=7), {}).frames == 7


def test_the_log_level_is_read_from_the_environment_in_any_case() -> None:
    assert WatchConfig.from_args(args(), {"BOOKCAST_LOG_LEVEL": "debug"}).log_level == "DEBUG"


@pytest.mark.parametrize(
    ("overrides", "env", "fragment"),
    [
        ({"pair": "NOPE-USD"}, {}, "PAIR: unknown pair 'NOPE-USD'"),
        ({"url": "http://x/ws"}, {}, "--url="),
        ({}, {"BOOKCAST_URL": "nonsense"}, "BOOKCAST_URL="),
        ({"depth": 0}, {}, r"--depth=0 is out of range \[1, 50\]"),
        ({"depth": 51}, {}, "--depth=51"),
        ({"frames": 0}, {}, "--frames=0"),
        ({"interval": -0.5}, {}, "--interval=-0.5"),
        ({}, {"BOOKCAST_LOG_LEVEL": "loud"}, "BOOKCAST_LOG_LEVEL='LOUD'"),
    ],
)
def test_bad_settings_name_the_flag_or_variable(overrides, env, fragment) -> None:
    with pytest.raises(SettingError, match=fragment):
        WatchConfig.from_args(args(**overrides), env)


def test_the_depth_range_is_inclusive() -> None:
    assert WatchConfig.from_args(args(depth=1), {}).depth == 1
    assert WatchConfig.from_args(args(depth=50), {}).depth == 50
    assert WatchConfig.from_args(args(interval=0.0), {}).interval == 0.0


@pytest.mark.parametrize("name", ["op_rate", "resync_retry", "open_timeout"])
def test_not_a_number_is_not_positive(name) -> None:
    with pytest.raises(ValueError, match=f"ClientOptions.{name} must be positive"):
        ClientOptions(**{name: float("nan")})
