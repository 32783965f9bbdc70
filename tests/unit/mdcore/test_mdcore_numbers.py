"""numbers: canonical fixed-decimal strings <-> integer units, and everything they refuse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdcore.errors import InvalidEventError, InvalidNumberError
from mdcore.numbers import MAX_NUMBER_LENGTH, MAX_UNITS, format_units, parse_units


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [
        ("0", 2, 0),
        ("0.00", 2, 0),
        ("64000.10", 2, 6400010),
        ("64000.1", 2, 6400010),
        ("1.25", 5, 125000),
        ("7", 0, 7),
        ("0.00001", 5, 1),
        ("123456789012345678", 0, 123456789012345678),
    ],
)
def test_parse_units(text, decimals, units) -> None:
    assert parse_units(text, decimals) == units


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [("1.500", 2, 150), ("5.0", 0, 5), ("5.000000", 0, 5), ("0.10000000", 1, 1), ("2.50", 1, 25)],
)
def test_parse_accepts_trailing_zeros_beyond_the_grid(text, decimals, units) -> None:
    assert parse_units(text, decimals) == units


def test_parse_accepts_leading_zeros_and_format_canonicalises_them() -> None:
    assert parse_units("007.10", 2) == 710
    assert format_units(parse_units("007.10", 2), 2) == "7.10"


@pytest.mark.parametrize(
    "text",
    [
        "-1",
        "-0.01",
        "+1",
        "1e5",
        "1E5",
        "1.5e-3",
        "1.",
        ".5",
        "",
        " 1",
        "1 ",
        "1\n",
        "abc",
        "nan",
        "inf",
        "1,5",
        "1_000",
        "0x10",
        "1.2.3",
        "١٢",  # Arabic-Indic digits: str.isdigit() would say yes
        "1" * (MAX_NUMBER_LENGTH + 1),
        "9" * 5000,  # past int()'s digit limit: must still be InvalidNumberError
    ],
)
def test_parse_rejects_garbage(text) -> None:
    with pytest.raises(InvalidNumberError):
        parse_units(text, 2)


@pytest.mark.parametrize("value", [1.5, 1, None, b"1", ["1"], True])
def test_parse_rejects_non_strings(value) -> None:
    with pytest.raises(InvalidNumberError):
        parse_units(value, 2)


@pytest.mark.parametrize(("text", "decimals"), [("1.001", 2), ("0.5", 0), ("0.000001", 5), ("1.0000001", 2)])
def test_parse_rejects_off_grid(text, decimals) -> None:
    with pytest.raises(InvalidNumberError, match="decimals"):
        parse_units(text, decimals)


def test_invalid_number_is_an_invalid_event_and_a_value_error() -> None:
    with pytest.raises(InvalidEventError):
        parse_units("x", 2)
    with pytest.raises(ValueError):
        parse_units("x", 2)


@pytest.mark.parametrize(
    ("units", "decimals", "text"),
    [
        (0, 2, "0.00"),
        (5, 2, "0.05"),
        (6400010, 2, "64000.10"),
        (123, 0, "123"),
        (1, 5, "0.00001"),
        (10, 1, "1.0"),
    ],
)
def test_format_units_has_exactly_the_decimals(units, decimals, text) -> None:
    assert format_units(units, decimals) == text


@given(st.integers(min_value=0, max_value=10**20), st.integers(min_value=0, max_value=10))
def test_format_then_parse_round_trips(units, decimals) -> None:
    text = format_units(units, decimals)
    assert parse_units(text, decimals) == units
    assert "e" not in text and "-" not in text
    assert text.count(".") == (1 if decimals else 0)


@given(
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=0, max_value=8),
    st.integers(min_value=0, max_value=4),
)
def test_parse_then_format_is_canonical(units, decimals, extra_zeros) -> None:
    canonical = format_units(units, decimals)
    padded = canonical + ("." if decimals == 0 and extra_zeros else "") + "0" * extra_zeros
    assert format_units(parse_units(padded, decimals), decimals) == canonical


# Numbers up to the length limit, most of them near it (where a canonical form could grow).
long_numbers = st.one_of(
    st.text(alphabet="0123456789", min_size=55, max_size=MAX_NUMBER_LENGTH),
    st.from_regex(r"[0-9]{1,64}(\.[0-9]{1,20})?", fullmatch=True),
).filter(lambda t: len(t) <= MAX_NUMBER_LENGTH)


@given(long_numbers, st.integers(min_value=0, max_value=8))
def test_whatever_parses_has_a_canonical_form_every_reader_parses(text, decimals) -> None:
    # One limit on both sides: a value accepted on the way in is written canonically (a point
    # and exactly `decimals` places) and must still be no longer than the readers' limit.
    try:
        units = parse_units(text, decimals)
    except InvalidNumberError:
        return
    canonical = format_units(units, decimals)
    assert len(canonical) <= MAX_NUMBER_LENGTH
    assert parse_units(canonical, decimals) == units


@pytest.mark.parametrize("decimals", [0, 1, 2, 5, 8])
def test_the_largest_value_accepted_is_the_longest_canonical_string(decimals) -> None:
    top = MAX_UNITS[decimals]
    assert len(format_units(top, decimals)) == MAX_NUMBER_LENGTH
    assert parse_units(format_units(top, decimals), decimals) == top
    one_more = str((top + 1) // 10**decimals)  # without its decimals: short enough to be read
    with pytest.raises(InvalidNumberError):
        parse_units(one_more, decimals)


def test_sixty_four_nines_are_rejected_where_their_canonical_form_would_grow() -> None:
    assert parse_units("9" * MAX_NUMBER_LENGTH, 0) == 10**MAX_NUMBER_LENGTH - 1  # "999…9" as is
    with pytest.raises(InvalidNumberError, match="longer than"):
        parse_units("9" * MAX_NUMBER_LENGTH, 2)  # would become "999…9.00": 67 characters
