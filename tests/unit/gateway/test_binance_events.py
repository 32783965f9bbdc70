"""Binance payloads: diff depth, partial book, combined wrapper, and the 1000 ms fold."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from gateway.binance.events import (
    DepthAggregator,
    encode_depth_update,
    levels8,
    partial_depth,
    wrap_combined,
)
from gateway.binance.symbols import SymbolInfo
from mdcore.local_book import LocalBook
from mdcore.messages import Snapshot


def _book() -> LocalBook:
    local = LocalBook("BTC-USD")
    bids = [("64000.10", "1.25000"), ("63999.90", "0.50000"), ("63990.00", "2.00000")]
    asks = [("64000.20", "0.75000"), ("64000.50", "2.00000")]
    local.load_snapshot(Snapshot("BTC-USD", "e", 7, 0, bids, asks, 0), verify=False)
    return local


def test_depth_update_has_binance_fields_in_order_and_no_pu() -> None:
    event = encode_depth_update("BTCUSD", 10, 12, 1700000000123, [["1.00000000", "2.00000000"]], [])
    assert event.startswith(b'{"e":"depthUpdate","E":1700000000123,"s":"BTCUSD","U":10,"u":12,"b":')
    decoded = orjson.loads(event)
    assert list(decoded) == ["e", "E", "s", "U", "u", "b", "a"]
    assert "pu" not in decoded


def test_levels8_rewrites_every_price_and_quantity() -> None:
    assert levels8([("64000.15", "0.30000"), ("64000.10", "0.00000")], SymbolInfo.of("BTC-USD")) == [
        ["64000.15000000", "0.30000000"],
        ["64000.10000000", "0.00000000"],
    ]
    assert levels8([("0.12345", "0"), ("1.00000", "1500")], SymbolInfo.of("DOGE-USD")) == [
        ["0.12345000", "0.00000000"],
        ["1.00000000", "1500.00000000"],
    ]


def test_partial_depth_is_the_top_of_the_book_with_its_update_id() -> None:
    payload = orjson.loads(partial_depth(_book(), 2, 99))
    assert payload == {
        "lastUpdateId": 99,
        "bids": [["64000.10000000", "1.25000000"], ["63999.90000000", "0.50000000"]],
        "asks": [["64000.20000000", "0.75000000"], ["64000.50000000", "2.00000000"]],
    }


def test_combined_wrapper_embeds_the_event_bytes_unchanged() -> None:
    event = encode_depth_update("BTCUSD", 1, 1, 5, [], [["2.00000000", "1.00000000"]])
    frame = wrap_combined(b"btcusd@depth@100ms", event)
    assert frame.endswith(event + b"}")
    assert orjson.loads(frame) == {"stream": "btcusd@depth@100ms", "data": orjson.loads(event)}


def test_fold_keeps_the_last_quantity_per_level_and_spans_first_to_last_id() -> None:
    agg = DepthAggregator("BTCUSD")
    assert agg.add(5, 5, 100, [["1.00000000", "1.00000000"]], [["3.00000000", "1.00000000"]]) is None
    assert agg.add(6, 6, 200, [["1.00000000", "0.00000000"], ["10.00000000", "2.00000000"]], []) is None
    assert agg.add(7, 7, 300, [["9.00000000", "4.00000000"]], [["2.50000000", "1.00000000"]]) is None
    event = orjson.loads(agg.flush())
    assert (event["U"], event["u"], event["E"], event["s"]) == (5, 7, 300, "BTCUSD")
    assert event["b"] == [
        ["10.00000000", "2.00000000"],
        ["9.00000000", "4.00000000"],
        ["1.00000000", "0.00000000"],
    ]
    assert event["a"] == [["2.50000000", "1.00000000"], ["3.00000000", "1.00000000"]]
    assert agg.flush() is None and not agg.pending


def test_fold_never_spans_a_jump_in_ids() -> None:
    agg = DepthAggregator("BTCUSD")
    agg.add(5, 5, 100, [["1.00000000", "1.00000000"]], [])
    agg.add(6, 6, 100, [], [])
    closed = agg.add(9, 9, 200, [["2.00000000", "1.00000000"]], [])  # 7 and 8 never came
    assert closed is not None
    first = orjson.loads(closed)
    assert (first["U"], first["u"], first["b"]) == (5, 6, [["1.00000000", "1.00000000"]])
    second = orjson.loads(agg.flush())
    assert (second["U"], second["u"], second["b"]) == (9, 9, [["2.00000000", "1.00000000"]])


_prices = st.integers(min_value=1, max_value=50).map(lambda p: f"{p}.00000000")
_qtys = st.integers(min_value=0, max_value=3).map(lambda q: f"{q}.00000000")
_windows = st.lists(st.lists(st.tuples(_prices, _qtys), max_size=5), min_size=1, max_size=8)


@given(_windows)
def test_applying_the_fold_equals_applying_each_window(windows) -> None:
    def apply(book: dict[str, str], levels) -> None:
        for price, qty in levels:
            if qty == "0.00000000":
                book.pop(price, None)
            else:
                book[price] = qty

    one_by_one: dict[str, str] = {"7.00000000": "9.00000000"}
    folded = dict(one_by_one)
    agg = DepthAggregator("X")
    for i, window in enumerate(windows):
        levels = [list(level) for level in window]
        apply(one_by_one, levels)
        assert agg.add(i + 1, i + 1, i, levels, []) is None
    apply(folded, orjson.loads(agg.flush())["b"])
    assert folded == one_by_one
