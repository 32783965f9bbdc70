"""settings: typed reading of the environment, failing fast with the key's name."""

from __future__ import annotations

import pytest

from mdcore.errors import BookcastError
from mdcore.instruments import NAMED_PAIRS
from mdcore.settings import SettingError, check_range, env_float, env_int, env_str, parse_pairs


def test_setting_error_is_a_value_error_and_ours() -> None:
    assert issubclass(SettingError, ValueError)
    assert issubclass(SettingError, BookcastError)


def test_env_str() -> None:
    assert env_str({"K": " kafka:9092 "}, "K") == "kafka:9092"
    assert env_str({}, "K", "dflt") == "dflt"
    assert env_str({"K": "   "}, "K", "dflt") == "dflt"
    with pytest.raises(SettingError, match="KAFKA_BOOTSTRAP"):
        env_str({}, "KAFKA_BOOTSTRAP")
    with pytest.raises(SettingError, match="REDIS_URL"):
        env_str({"REDIS_URL": " "}, "REDIS_URL")


def test_env_int() -> None:
    assert env_int({"N": "8"}, "N", 1) == 8
    assert env_int({"N": " 12 "}, "N", 1) == 12
    assert env_int({}, "N", 5) == 5
    assert env_int({"N": ""}, "N", 5) == 5
    assert env_int({"N": "50"}, "N", 100, lo=50, hi=100) == 50  # bounds are inclusive
    assert env_int({"N": "100"}, "N", 100, lo=50, hi=100) == 100


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "0x10"])
def test_env_int_rejects_non_integers(raw) -> None:
    with pytest.raises(SettingError, match="BOOKCAST_PARTITIONS"):
        env_int({"BOOKCAST_PARTITIONS": raw}, "BOOKCAST_PARTITIONS", 8)


@pytest.mark.parametrize("raw", ["49", "101", "-1"])
def test_env_int_rejects_out_of_range(raw) -> None:
    with pytest.raises(SettingError, match=r"BOOKCAST_WINDOW_MS=.* out of range \[50, 100\]"):
        env_int({"BOOKCAST_WINDOW_MS": raw}, "BOOKCAST_WINDOW_MS", 100, lo=50, hi=100)


def test_env_float() -> None:
    assert env_float({"R": "200"}, "R", 1.0) == 200.0
    assert env_float({"R": "0.5"}, "R", 1.0, lo=0.1) == 0.5
    assert env_float({}, "R", 7.5) == 7.5
    with pytest.raises(SettingError, match="BOOKCAST_FEED_RATE"):
        env_float({"BOOKCAST_FEED_RATE": "fast"}, "BOOKCAST_FEED_RATE", 200.0)
    with pytest.raises(SettingError, match="BOOKCAST_FEED_RATE"):
        env_float({"BOOKCAST_FEED_RATE": "0"}, "BOOKCAST_FEED_RATE", 200.0, lo=0.001)


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_env_float_rejects_non_finite(raw) -> None:
    # "nan" compares false with every bound, so a range check alone would let it through.
    with pytest.raises(SettingError, match="BOOKCAST_FEED_RATE"):
        env_float({"BOOKCAST_FEED_RATE": raw}, "BOOKCAST_FEED_RATE", 200.0, lo=0.001, hi=1e6)


def test_check_range_open_ends() -> None:
    assert check_range("K", 10**9, 0, None) == 10**9
    assert check_range("K", -5, None, 0) == -5
    with pytest.raises(SettingError, match="K=-1"):
        check_range("K", -1, 0, None)


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_parse_pairs_default(raw) -> None:
    assert parse_pairs("BOOKCAST_PAIRS", raw) == NAMED_PAIRS


def test_parse_pairs() -> None:
    assert parse_pairs("BOOKCAST_PAIRS", "BTC-USD, ETH-USD,BTC-USD,") == ("BTC-USD", "ETH-USD")
    assert parse_pairs("BOOKCAST_PAIRS", "SYN000-USD,SYN001-USD") == ("SYN000-USD", "SYN001-USD")


def test_parse_pairs_rejects_unknown_pairs() -> None:
    with pytest.raises(SettingError, match=r"BOOKCAST_PAIRS: unknown pair 'FOO-USD'"):
        parse_pairs("BOOKCAST_PAIRS", "BTC-USD,FOO-USD")


def test_parse_pairs_rejects_an_empty_list() -> None:
    with pytest.raises(SettingError, match="BOOKCAST_PAIRS names no pair"):
        parse_pairs("BOOKCAST_PAIRS", " , ,")
