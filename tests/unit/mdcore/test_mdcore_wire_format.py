"""md_service's fast level formatting is exactly the instruments' canonical formatting."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mdcore.book import OrderBook
from mdcore.instruments import NAMED_PAIRS, instrument
from mdcore.wire_format import book_checksum, wire_format

units = st.integers(min_value=0, max_value=10**15)


@given(st.sampled_from(NAMED_PAIRS), units, units)
def test_same_strings_as_the_instrument(pair, price, qty) -> None:
    inst, wire = instrument(pair), wire_format(instrument(pair))
    assert wire.price(price) == inst.format_price(price)
    assert wire.price(price) == inst.format_price(price)  # from the cache this time
    assert wire.qty(qty) == inst.format_qty(qty)
    assert wire.levels([(price, qty)]) == [(inst.format_price(price), inst.format_qty(qty))]


@given(st.sampled_from(NAMED_PAIRS), st.dictionaries(units, units.filter(bool), max_size=60))
def test_same_checksum_as_the_core(pair, levels) -> None:
    book = OrderBook()
    book.replace(levels.items(), [(p + 10**16, q) for p, q in levels.items()])
    assert wire_format(instrument(pair)).checksum(book) == book_checksum(book, instrument(pair))
