"""gateway.binance.streams: stream names and stream URLs, resolved against the symbol table."""

from __future__ import annotations

import pytest

from gateway.binance.streams import StreamPathError, parse_stream_name, parse_stream_target
from gateway.binance.symbols import SymbolTable

TABLE = SymbolTable(["BTC-USD", "ETH-USD", "SOL-USD"])


def _target(url: str, max_streams: int = 1024):
    path, _, query = url.partition("?")
    return parse_stream_target(path, query, TABLE, max_streams)


@pytest.mark.parametrize(
    ("name", "levels", "speed"),
    [
        ("btcusd@depth", 0, 1000),
        ("btcusd@depth@1000ms", 0, 1000),
        ("btcusd@depth@100ms", 0, 100),
        ("ethusd@depth5", 5, 1000),
        ("ethusd@depth10@100ms", 10, 100),
        ("solusd@depth20@1000ms", 20, 1000),
    ],
)
def test_stream_names_resolve(name, levels, speed) -> None:
    spec = parse_stream_name(name, TABLE)
    assert spec is not None and (spec.name, spec.levels, spec.speed_ms) == (name, levels, speed)
    assert spec.pair in TABLE.pairs and spec.symbol == spec.pair.replace("-", "")


@pytest.mark.parametrize(
    "name",
    [
        "BTCUSD@depth",
        "btcusd@depth7",
        "btcusd@depth@250ms",
        "btcusd@trade",
        "xyzusd@depth",
        "btcusd",
        5,
        None,
    ],
)
def test_unknown_or_malformed_names_do_not_resolve(name) -> None:
    assert parse_stream_name(name, TABLE) is None


def test_urls_for_raw_and_combined_streams() -> None:
    assert _target("/ws").combined is False and _target("/ws/").streams == ()
    raw = _target("/ws/btcusd@depth@100ms/ethusd@depth5/btcusd@depth@100ms")
    assert not raw.combined and [s.name for s in raw.streams] == ["btcusd@depth@100ms", "ethusd@depth5"]
    combined = _target("/stream?streams=btcusd@depth/solusd@depth%40100ms")
    assert combined.combined and [s.name for s in combined.streams] == ["btcusd@depth", "solusd@depth@100ms"]
    assert _target("/stream").streams == () and _target("/stream").combined
    assert _target("/stream?streams=btcusd@depth&timeUnit=millisecond").streams[0].pair == "BTC-USD"
    assert _target("/api/v3/depth") is None and _target("/wsx") is None


@pytest.mark.parametrize("url", ["/ws/0", "/ws/17/", "/ws/3/btcusd@depth"])
def test_a_numeric_segment_is_a_connection_label_as_ccxt_sends_it(url) -> None:
    target = _target(url)
    assert target is not None and not target.combined
    assert [s.name for s in target.streams] == (["btcusd@depth"] if "@" in url else [])


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/ws/btcusd@trade", 2),
        ("/stream?streams=nopeusd@depth", 2),
        ("/ws/btcusd@depth/ethusd@depth/solusd@depth", 2),  # max 2 below
        ("/stream?streams=btcusd@depth&timeUnit=MICROSECOND", -1194),
    ],
)
def test_bad_urls_are_refused_with_a_binance_error(url, code) -> None:
    with pytest.raises(StreamPathError) as info:
        _target(url, max_streams=2)
    assert info.value.code == code
