"""md_service's hot-path event parser: same verdicts as the reference parser, and a kind per reject."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdcore.errors import InvalidEventError, InvalidNumberError
from mdcore.events import _units, parse_event
from mdcore.numbers import parse_units

VALID = {"pair": "BTC-USD", "xseq": 17, "xts": 5, "changes": [["b", "64000.10", "1.25"]]}

number_like = st.one_of(
    st.text(alphabet="0123456789.", max_size=12),
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


@given(number_like, st.integers(min_value=0, max_value=8))
def test_fast_number_parser_agrees_with_the_reference(text, decimals) -> None:
    assert outcome(_units, text, decimals) == outcome(parse_units, text, decimals)


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
