"""md_service's hot-path event parser: same verdicts as the reference parser, and a kind per reject."""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from md_service.pair_stream import PairStream
from mdcore.codec import decode_delta, decode_snapshot
from mdcore.errors import InvalidEventError, InvalidNumberError
from mdcore.events import parse_event
from mdcore.instruments import instrument
from mdcore.local_book import LocalBook
from mdcore.numbers import MAX_NUMBER_LENGTH, MAX_UNITS, parse_units

VALID = {"pair": "BTC-USD", "xseq": 17, "xts": 5, "changes": [["b", "64000.10", "1.25"]]}

number_like = st.one_of(
    st.text(alphabet="0123456789.", max_size=12),
    st.text(alphabet="0123456789.", min_size=55, max_size=66),  # around the length limit
    st.text(alphabet="0123456789.-+e _١²", max_size=8),
    st.from_regex(r"[0-9]{1,8}(\.[0-9]{0,9})?", fullmatch=True),
    st.integers(),
    st.floats(allow_nan=True),
    st.none(),
)


def outcome(fn, text, decimals):
    try:
        return fn(text, decimals)
    except InvalidNumberError:
        return "rejected"


_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def reference_units(text, decimals: int) -> int:
    """The grammar spelt out with a regex (the parser before it lost its regex for speed)."""
    if type(text) is not str or len(text) > MAX_NUMBER_LENGTH or not _DECIMAL.fullmatch(text):
        raise InvalidNumberError("not a decimal")
    whole, _, frac = text.partition(".")
    if len(frac) > decimals:
        if frac[decimals:].strip("0"):
            raise InvalidNumberError("off the grid")
        frac = frac[:decimals]
    units = int(whole) if decimals == 0 else int(whole) * 10**decimals + int(frac.ljust(decimals, "0"))
    if units > MAX_UNITS[decimals]:
        raise InvalidNumberError("too long")
    return units


@given(number_like, st.integers(min_value=0, max_value=8))
def test_the_number_parser_agrees_with_the_grammar(text, decimals) -> None:
    assert outcome(parse_units, text, decimals) == outcome(reference_units, text, decimals)


def event(**fields) -> bytes:
    return orjson.dumps({**VALID, **fields})


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"{oops", "not_json"),
        (b"[1]", "not_object"),
        (orjson.dumps({"pair": "BTC-USD", "xseq": 1, "xts": 1}), "missing_field"),
        (event(pair="NOPE-USD"), "unknown_pair"),
        (event(pair=["BTC-USD"]), "unknown_pair"),
        (event(xseq=-1), "bad_xseq"),
        (event(xseq="1"), "bad_xseq"),
        (event(xts=1.5), "bad_xts"),
        (event(changes=[]), "bad_changes"),
        (event(changes=[["b", "1"]]), "bad_change"),
        (event(changes=[["x", "1", "1"]]), "bad_side"),
        (event(changes=[["b", "-1", "1"]]), "bad_number"),
        (event(changes=[["b", "1", "-1"]]), "bad_number"),
        (event(changes=[["b", "abc", "1"]]), "bad_number"),
        (event(changes=[["b", 64000.1, "1"]]), "bad_number"),
        (event(changes=[["b", ["1"], "1"]]), "bad_number"),
        (event(changes=[["b", "64000.101", "1"]]), "bad_number"),  # off the tick grid
        (event(changes=[["b", "0", "1"]]), "bad_number"),
        (event(changes=[["b", "64000.10", "9" * 64]]), "bad_number"),  # "999…9.00000": 70 characters
        (event(changes=[["b", "9" * 64, "1"]]), "bad_number"),
        (event(changes=[["b", "10000000.01", "1"]]), "out_of_band"),  # BTC above its band
        (event(pair="DOGE-USD", changes=[["a", "100.00001", "1"]]), "out_of_band"),
    ],
)
def test_every_reject_names_its_kind(raw, kind) -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_event(raw)
    assert caught.value.kind == kind


def test_cached_prices_are_checked_per_instrument() -> None:
    # "0.0001" is on XRP's grid (4 decimals) but not BTC's (2): a cache shared across
    # instruments would let it through for BTC once XRP parsed it.
    assert parse_event(event(pair="XRP-USD", changes=[["b", "0.0001", "1"]]))[3] == [("b", 1, 10)]
    with pytest.raises(InvalidNumberError):
        parse_event(event(changes=[["b", "0.0001", "1"]]))


def test_parse_event_returns_plain_values() -> None:
    assert parse_event(event()) == ("BTC-USD", 17, 5, [("b", 6400010, 125000)])


def test_a_price_is_checked_against_its_band_even_when_another_pair_cached_it() -> None:
    assert parse_event(event(pair="SOL-USD", changes=[["b", "100000.00", "1"]]))[3] == [("b", 10000000, 1000)]
    with pytest.raises(InvalidEventError) as caught:
        parse_event(event(pair="SOL-USD", changes=[["b", "100000.01", "1"]]))
    assert caught.value.kind == "out_of_band"
    assert parse_event(event(changes=[["b", "100000.01", "1"]]))[3][0][1] == 10000001  # in BTC's band


quantities = st.one_of(  # most near the length limit, where a canonical form could grow past it
    st.text(alphabet="0123456789", min_size=55, max_size=MAX_NUMBER_LENGTH),
    st.from_regex(r"[0-9]{1,64}(\.[0-9]{1,8})?", fullmatch=True),
).filter(lambda t: len(t) <= MAX_NUMBER_LENGTH)


@given(quantities, st.sampled_from(["BTC-USD", "DOGE-USD", "XRP-USD", "SYN001-USD"]))
def test_whatever_md_service_accepts_it_can_write_and_every_reader_can_read(qty, pair) -> None:
    inst = instrument(pair)
    price = inst.format_price(100 * 10**inst.price_decimals)
    try:
        _, _, _, changes = parse_event(
            event(pair=pair, changes=[["b", inst.tick_size, "1"], ["a", price, qty]])
        )
    except InvalidEventError:
        return
    stream = PairStream(pair, "e", stored=None)
    stream.apply(1, 1, changes)
    out = stream.close_window(1, 10)
    assert out is not None and out.snapshot is not None
    reader = LocalBook(pair)
    reader.load_snapshot(decode_snapshot(out.snapshot))  # parses every price and quantity
    assert reader.book == stream.book
    for level in decode_delta(out.delta).asks:
        assert all(len(text) <= MAX_NUMBER_LENGTH for text in level)
