"""instruments: the catalogue, synthetic pairs, the tick and lot grids."""

from __future__ import annotations

import pytest

from feed_simulator.market import START_PRICES, SYNTHETIC_START_PRICE
from mdcore.errors import InvalidEventError, InvalidNumberError, UnknownPairError
from mdcore.instruments import NAMED_PAIRS, Instrument, default_pairs, instrument, is_known_pair
from mdcore.numbers import MAX_NUMBER_LENGTH, MAX_UNITS, parse_units


def test_named_pairs_are_eight_distinct_usd_pairs() -> None:
    assert len(NAMED_PAIRS) == 8
    assert len(set(NAMED_PAIRS)) == 8
    assert NAMED_PAIRS[:2] == ("BTC-USD", "ETH-USD")
    assert all(p.endswith("-USD") for p in NAMED_PAIRS)


@pytest.mark.parametrize("pair", NAMED_PAIRS)
def test_every_named_pair_has_an_instrument(pair) -> None:
    inst = instrument(pair)
    assert inst.pair == pair
    assert inst.price_decimals >= 0 and inst.qty_decimals >= 0
    assert inst.tick >= 1 and inst.lot >= 1
    assert is_known_pair(pair)


def test_btc_grid() -> None:
    btc = instrument("BTC-USD")
    assert btc.parse_price("64000.10") == 6400010
    assert btc.format_price(6400010) == "64000.10"
    assert btc.parse_qty("1.25") == 125000
    assert btc.format_qty(125000) == "1.25000"
    assert btc.tick_size == "0.01"
    assert btc.lot_size == "0.00001"


@pytest.mark.parametrize("pair", ["SYN000-USD", "SYN001-USD", "SYN999-USD", "SYN1000-USD", "SYN9999-USD"])
def test_synthetic_pairs_exist(pair) -> None:
    inst = instrument(pair)
    assert inst.pair == pair
    assert (inst.price_decimals, inst.qty_decimals) == (2, 3)
    assert is_known_pair(pair)


@pytest.mark.parametrize(
    "pair",
    [
        "SYN00-USD",
        "SYN10000-USD",
        "syn001-usd",
        "SYN001-EUR",
        "SYN001-USD\n",
        " BTC-USD",
        "btc-usd",
        "FOO-USD",
        "",
    ],
)
def test_unknown_pairs_are_rejected(pair) -> None:
    with pytest.raises(UnknownPairError) as info:
        instrument(pair)
    assert info.value.pair == pair
    assert not is_known_pair(pair)


@pytest.mark.parametrize("pair", [None, 1, ["BTC-USD"], {"BTC-USD": 1}, b"BTC-USD"])
def test_non_string_pairs_are_unknown_not_a_crash(pair) -> None:
    # An unhashable value from a malformed event must not escape as TypeError.
    with pytest.raises(UnknownPairError):
        instrument(pair)
    assert not is_known_pair(pair)


def test_unknown_pair_is_an_invalid_event() -> None:
    assert issubclass(UnknownPairError, InvalidEventError)


def test_default_pairs() -> None:
    assert default_pairs(1) == ["BTC-USD"]
    assert default_pairs(8) == list(NAMED_PAIRS)
    assert default_pairs(10) == [*NAMED_PAIRS, "SYN000-USD", "SYN001-USD"]
    assert all(is_known_pair(p) for p in default_pairs(120))
    assert len(set(default_pairs(120))) == 120
    with pytest.raises(ValueError):
        default_pairs(0)


COARSE = Instrument("TEST-USD", price_decimals=2, qty_decimals=3, tick=5, lot=10)


def test_tick_grid() -> None:
    assert COARSE.parse_price("1.05") == 105
    assert COARSE.parse_price("1.10") == 110
    assert COARSE.tick_size == "0.05"
    for off_tick in ("1.03", "1.01", "0.01"):
        with pytest.raises(InvalidNumberError, match="tick"):
            COARSE.parse_price(off_tick)


@pytest.mark.parametrize("price", ["0", "0.00"])
def test_price_must_be_positive(price) -> None:
    with pytest.raises(InvalidNumberError):
        COARSE.parse_price(price)
    with pytest.raises(InvalidNumberError):
        instrument("BTC-USD").parse_price(price)


def test_lot_grid() -> None:
    assert COARSE.parse_qty("0.010") == 10
    assert COARSE.parse_qty("0") == 0  # 0 removes a level: always on the grid
    assert COARSE.lot_size == "0.010"
    with pytest.raises(InvalidNumberError, match="lot"):
        COARSE.parse_qty("0.015")


def test_price_finer_than_decimals_is_off_grid() -> None:
    with pytest.raises(InvalidNumberError):
        instrument("BTC-USD").parse_price("64000.101")
    with pytest.raises(InvalidNumberError):
        instrument("DOGE-USD").parse_qty("1.5")


@pytest.mark.parametrize("pair", [*NAMED_PAIRS, "SYN001-USD", "SYN9999-USD"])
def test_every_band_holds_the_feeds_start_price_and_fits_every_reader(pair) -> None:
    inst = instrument(pair)
    lo, hi = inst.price_band
    start = parse_units(START_PRICES.get(pair, SYNTHETIC_START_PRICE), inst.price_decimals)
    assert lo == inst.tick and 100 * start <= hi  # room for the market to move a hundredfold
    assert len(inst.format_price(hi)) <= MAX_NUMBER_LENGTH
    assert inst.parse_price(inst.format_price(hi)) == hi  # readers take any price in the band


def test_an_instrument_without_a_band_takes_any_price_a_reader_can_parse() -> None:
    assert COARSE.price_band == (5, MAX_UNITS[2])
