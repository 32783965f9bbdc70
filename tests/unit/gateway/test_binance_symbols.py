"""Binance symbols and 8-decimal numbers for bookcast pairs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.binance.symbols import SymbolInfo, SymbolTable, padder, price_key, to8, units8
from mdcore.instruments import NAMED_PAIRS, instrument
from mdcore.numbers import format_units


@pytest.mark.parametrize(
    ("canonical", "binance"),
    [
        ("64000.10", "64000.10000000"),
        ("0.00000", "0.00000000"),
        ("1.25000", "1.25000000"),
        ("42", "42.00000000"),
        ("0", "0.00000000"),
        ("0.12345678", "0.12345678"),
    ],
)
def test_to8_pads_to_eight_decimals(canonical, binance) -> None:
    assert to8(canonical) == binance


def test_to8_refuses_more_than_eight_decimals() -> None:
    with pytest.raises(ValueError, match="more than 8"):
        to8("1.123456789")


@given(st.sampled_from(NAMED_PAIRS), st.integers(min_value=0, max_value=10**15))
def test_units_and_strings_give_the_same_binance_string(pair, units) -> None:
    # REST (from book units) and streams (from canonical delta strings) must agree exactly.
    inst = instrument(pair)
    for decimals in (inst.price_decimals, inst.qty_decimals):
        assert units8(units, decimals) == to8(format_units(units, decimals))


@given(st.integers(min_value=0, max_value=8), st.from_regex(r"[0-9]{1,7}(\.[0-9]{1,9})?", fullmatch=True))
def test_the_fast_padder_always_agrees_with_to8(decimals, text) -> None:
    # Levels reach the feed already parsed by the replica, so they are decimal strings; those
    # with the pair's places take the concatenation, any other the checked path: same result.
    try:
        expected = to8(text)
    except ValueError:
        expected = None
    try:
        got = padder(decimals)(text)
    except ValueError:
        got = None
    assert got == expected
    canonical = format_units(int(text.replace(".", "")), decimals)
    assert padder(decimals)(canonical) == to8(canonical)


@given(st.integers(min_value=0, max_value=10**18), st.integers(min_value=0, max_value=10**18))
def test_price_key_orders_like_the_numbers(a, b) -> None:
    assert (price_key(units8(a, 8)) < price_key(units8(b, 8))) == (a < b)


def test_symbol_info_names_assets_and_grid() -> None:
    btc = SymbolInfo.of("BTC-USD")
    assert (btc.symbol, btc.stream, btc.base, btc.quote) == ("BTCUSD", "btcusd", "BTC", "USD")
    assert (btc.tick_size, btc.step_size) == ("0.01000000", "0.00001000")
    doge = SymbolInfo.of("DOGE-USD")
    assert (doge.tick_size, doge.step_size) == ("0.00001000", "1.00000000")
    assert SymbolInfo.of("SYN042-USD").symbol == "SYN042USD"


def test_table_finds_by_symbol_stream_and_pair_and_rejects_what_it_cannot_name() -> None:
    table = SymbolTable(["ETH-USD", "BTC-USD", "NOPE-USD", "SYN007-USD"])
    assert [info.symbol for info in table] == ["BTCUSD", "ETHUSD", "SYN007USD"]
    assert table.by_symbol("BTCUSD").pair == "BTC-USD"
    assert table.by_stream("ethusd").pair == "ETH-USD"
    assert table.by_pair("SYN007-USD").stream == "syn007usd"
    assert table.by_symbol("btcusd") is None and table.by_stream("BTCUSD") is None
    assert set(table.rejected) == {"NOPE-USD"}
    assert table.pairs == {"ETH-USD", "BTC-USD", "NOPE-USD", "SYN007-USD"}
