"""checksum: CRC-32 of bid0:ask0:bid1:ask1:... over the first 25 levels (protocol v1)."""

from __future__ import annotations

import zlib

from mdcore.book import ASK, BID, OrderBook
from mdcore.checksum import CHECKSUM_DEPTH, checksum_of_wire_levels
from mdcore.instruments import instrument
from mdcore.wire_format import book_checksum

BTC = instrument("BTC-USD")

# The worked example of docs/protocol.md.
EXAMPLE_BIDS = [["64000.10", "1.25000"], ["63999.90", "0.50000"]]
EXAMPLE_ASKS = [["64000.20", "0.75000"], ["64000.50", "2.00000"], ["64001.00", "0.10000"]]
EXAMPLE_STRING = "64000.10:1.25000:64000.20:0.75000:63999.90:0.50000:64000.50:2.00000:64001.00:0.10000"
EXAMPLE_CHECKSUM = 3528485232


def btc_book(bids, asks) -> OrderBook:
    book = OrderBook()
    for price, qty in bids:
        book.set_level(BID, BTC.parse_price(price), BTC.parse_qty(qty))
    for price, qty in asks:
        book.set_level(ASK, BTC.parse_price(price), BTC.parse_qty(qty))
    return book


def test_worked_example_by_hand() -> None:
    # Interleaved bid0, ask0, bid1, ask1, then ask2 alone: the missing bid2 is left out.
    assert zlib.crc32(EXAMPLE_STRING.encode("ascii")) == EXAMPLE_CHECKSUM
    assert checksum_of_wire_levels(EXAMPLE_BIDS, EXAMPLE_ASKS) == EXAMPLE_CHECKSUM


def test_book_checksum_formats_on_the_grid() -> None:
    # Non-canonical input strings ("1.25", "2") become the canonical "1.25000", "2.00000".
    book = btc_book(
        [("63999.9", "0.5"), ("64000.10", "1.25")],
        [("64001", "0.1"), ("64000.2", "0.75"), ("64000.50", "2")],
    )
    assert book_checksum(book, BTC) == EXAMPLE_CHECKSUM


def test_missing_levels_are_left_out() -> None:
    only_asks = [["1.00", "1.00000"], ["2.00", "2.00000"]]
    assert checksum_of_wire_levels([], only_asks) == zlib.crc32(b"1.00:1.00000:2.00:2.00000")
    more_bids = [["3.00", "1.00000"], ["2.00", "1.00000"], ["1.00", "1.00000"]]
    one_ask = [["4.00", "9.00000"]]
    expected = b"3.00:1.00000:4.00:9.00000:2.00:1.00000:1.00:1.00000"
    assert checksum_of_wire_levels(more_bids, one_ask) == zlib.crc32(expected)


def test_empty_book_checksums_the_empty_string() -> None:
    assert checksum_of_wire_levels([], []) == zlib.crc32(b"") == 0
    assert book_checksum(OrderBook(), BTC) == 0


def deep_book(levels: int) -> OrderBook:
    book = OrderBook()
    for i in range(levels):
        book.set_level(BID, 1_000_000 - i, 100 + i)
        book.set_level(ASK, 1_000_001 + i, 200 + i)
    return book


def test_only_the_first_25_levels_count() -> None:
    assert CHECKSUM_DEPTH == 25
    book = deep_book(30)
    base = book_checksum(book, BTC)
    book.set_level(BID, 1_000_000 - 25, 1)  # bid level 26 (index 25)
    book.set_level(ASK, 1_000_001 + 29, 0)  # ask level 30 removed
    assert book_checksum(book, BTC) == base
    book.set_level(BID, 1_000_000 - 24, 1)  # bid level 25 (index 24) counts
    assert book_checksum(book, BTC) != base


def test_book_checksum_equals_the_spelled_out_string() -> None:
    book = deep_book(30)
    bids = [(BTC.format_price(p), BTC.format_qty(q)) for p, q in book.top(BID)]
    asks = [(BTC.format_price(p), BTC.format_qty(q)) for p, q in book.top(ASK)]
    parts = []
    for i in range(25):
        parts += [f"{bids[i][0]}:{bids[i][1]}", f"{asks[i][0]}:{asks[i][1]}"]
    assert book_checksum(book, BTC) == zlib.crc32(":".join(parts).encode("ascii"))
    assert checksum_of_wire_levels(bids, asks) == book_checksum(book, BTC)


def test_checksum_is_unsigned_32_bit_and_order_sensitive() -> None:
    value = checksum_of_wire_levels(EXAMPLE_BIDS, EXAMPLE_ASKS)
    assert 0 <= value < 2**32
    # Swapping the sides gives a different string, so a different checksum.
    assert checksum_of_wire_levels(EXAMPLE_ASKS, EXAMPLE_BIDS) != value
