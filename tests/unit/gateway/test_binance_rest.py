"""REST: ping, time, exchangeInfo, depth, Binance errors and weight headers; plain calls."""

from __future__ import annotations

import email.utils
from urllib.parse import quote

import pytest

from gateway.binance.rest import BinanceRest, DepthQuery, RestAnswer, depth_weight
from gateway.binance.symbols import SymbolTable
from mdcore.instruments import NAMED_PAIRS, instrument
from mdcore.local_book import LocalBook
from mdcore.messages import Snapshot

NOW = 1_732_190_412_345  # 12.345 s into a minute
TABLE = SymbolTable(NAMED_PAIRS)


class Clock:
    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def _rest(limit: int = 6000, clock: Clock | None = None) -> BinanceRest:
    return BinanceRest(limit, clock or Clock())


def _get(rest: BinanceRest, target: str, ip: str = "10.0.0.1") -> RestAnswer | DepthQuery:
    path, _, query = target.partition("?")
    return rest.handle(path, query, ip, TABLE)


def _headers(answer: RestAnswer) -> dict[str, str]:
    return dict(answer.headers)


def _error(answer, code: int, status: int = 400) -> str:
    assert isinstance(answer, RestAnswer)
    body = answer.json()
    assert (answer.status, body["code"], list(body)) == (status, code, ["code", "msg"])
    return body["msg"]


def test_ping_and_time_with_binance_headers() -> None:
    rest = _rest()
    ping = _get(rest, "/api/v3/ping")
    assert (ping.status, ping.json()) == (200, {})
    headers = _headers(ping)
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == "2"
    assert headers["X-MBX-USED-WEIGHT-1M"] == headers["X-MBX-USED-WEIGHT"] == "1"
    assert email.utils.parsedate_to_datetime(headers["Date"]).timestamp() == NOW // 1000
    time_answer = _get(rest, "/api/v3/time")
    assert time_answer.json() == {"serverTime": NOW}
    assert _headers(time_answer)["X-MBX-USED-WEIGHT-1M"] == "2"


def test_used_weight_is_per_ip_and_per_minute() -> None:
    clock = Clock()
    rest = _rest(clock=clock)
    _get(rest, "/api/v3/exchangeInfo")
    assert _headers(_get(rest, "/api/v3/ping"))["X-MBX-USED-WEIGHT-1M"] == "21"
    assert _headers(_get(rest, "/api/v3/ping", ip="10.0.0.2"))["X-MBX-USED-WEIGHT-1M"] == "1"
    clock.now += 60_000 - 12_345  # the next minute starts
    assert _headers(_get(rest, "/api/v3/ping"))["X-MBX-USED-WEIGHT-1M"] == "1"


def test_over_the_weight_limit_is_429_with_retry_after() -> None:
    rest = _rest(limit=25)
    assert _get(rest, "/api/v3/exchangeInfo").status == 200
    answer = _get(rest, "/api/v3/exchangeInfo")
    msg = _error(answer, -1003, status=429)
    assert "current limit is 25 request weight per 1 MINUTE" in msg
    assert _headers(answer)["Retry-After"] == "48"  # seconds to the next minute
    assert _headers(answer)["X-MBX-USED-WEIGHT-1M"] == "40"


def test_exchange_info_lists_every_symbol_with_filters_from_the_catalogue() -> None:
    info = _get(_rest(), "/api/v3/exchangeInfo").json()
    assert (info["timezone"], info["serverTime"], info["exchangeFilters"]) == ("UTC", NOW, [])
    assert info["rateLimits"][0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 6000,
    }
    assert [s["symbol"] for s in info["symbols"]] == sorted(p.replace("-", "") for p in NAMED_PAIRS)
    for entry in info["symbols"]:
        pair = f"{entry['baseAsset']}-{entry['quoteAsset']}"
        inst = instrument(pair)
        assert entry["symbol"] == pair.replace("-", "") and entry["status"] == "TRADING"
        assert entry["baseAssetPrecision"] == entry["quoteAssetPrecision"] == 8
        assert "SPOT" in entry["permissions"]
        price_filter, lot_size = entry["filters"]
        assert price_filter["filterType"] == "PRICE_FILTER" and lot_size["filterType"] == "LOT_SIZE"
        assert float(price_filter["tickSize"]) == inst.tick / 10**inst.price_decimals
        assert float(lot_size["stepSize"]) == inst.lot / 10**inst.qty_decimals
        assert (
            price_filter["minPrice"] == price_filter["tickSize"]
            and lot_size["minQty"] == lot_size["stepSize"]
        )
        assert all(
            len(v.split(".")[1]) == 8 for f in entry["filters"] for k, v in f.items() if k != "filterType"
        )


@pytest.mark.parametrize(
    ("query", "symbols"),
    [
        ("symbol=ETHUSD", ["ETHUSD"]),
        ('symbols=["BTCUSD","ETHUSD"]', ["BTCUSD", "ETHUSD"]),
        ("symbols=" + quote('["SOLUSD", "BTCUSD"]'), ["SOLUSD", "BTCUSD"]),
        ("permissions=SPOT", sorted(p.replace("-", "") for p in NAMED_PAIRS)),
        ('permissions=["MARGIN"]', []),
        ("symbolStatus=HALT", []),
    ],
)
def test_exchange_info_selects_symbols(query, symbols) -> None:
    info = _get(_rest(), f"/api/v3/exchangeInfo?{query}").json()
    assert [s["symbol"] for s in info["symbols"]] == symbols


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("symbol=FOOUSD", -1121),
        ('symbols=["BTCUSD","FOOUSD"]', -1121),
        ("symbols=BTCUSD", -1100),
        ('symbols=["btcusd"]', -1100),
        ('symbols=["BTCUSD","BTCUSD"]', -1151),
        ('symbol=BTCUSD&symbols=["ETHUSD"]', -1128),
        ("symbol=BTCUSD&symbolStatus=TRADING", -1128),
        ("symbol=BTCUSD&symbol=ETHUSD", -1101),
        ("symbol=BTCUSD&foo=1", -1104),
        ("symbolStatus=OPEN", -1122),
    ],
)
def test_exchange_info_errors(query, code) -> None:
    _error(_get(_rest(), f"/api/v3/exchangeInfo?{query}"), code)


def _book(levels: int) -> LocalBook:
    local = LocalBook("ETH-USD")
    bids = [(f"{3000 - i}.00", "1.0000") for i in range(levels)]
    asks = [(f"{3001 + i}.50", "0.2500") for i in range(levels)]
    local.load_snapshot(Snapshot("ETH-USD", "e", 1, 0, bids, asks, 0), verify=False)
    return local


@pytest.mark.parametrize(
    ("query", "limit", "weight"),
    [
        ("symbol=ETHUSD", 100, 5),
        ("limit=5&symbol=ETHUSD", 5, 5),
        ("symbol=ETHUSD&limit=500", 500, 25),
        ("symbol=ETHUSD&limit=1000", 1000, 50),
        ("symbol=ETHUSD&limit=5000", 5000, 250),
        ("symbol=ETHUSD&limit=100000", 5000, 250),
        ("symbol=ETHUSD&symbolStatus=TRADING", 100, 5),
    ],
)
def test_depth_parameters_in_any_order(query, limit, weight) -> None:
    query_ = _get(_rest(), f"/api/v3/depth?{query}")
    assert isinstance(query_, DepthQuery)
    assert (query_.info.symbol, query_.limit, query_.used_weight) == ("ETHUSD", limit, weight)
    assert depth_weight(limit) == weight


def test_depth_answer_is_the_top_of_the_book_at_its_update_id() -> None:
    rest = _rest()
    query = _get(rest, "/api/v3/depth?symbol=ETHUSD&limit=3")
    answer = rest.depth(query, _book(10), 1732190400000042)
    assert answer.status == 200 and _headers(answer)["X-MBX-USED-WEIGHT-1M"] == "5"
    assert answer.json() == {
        "lastUpdateId": 1732190400000042,
        "bids": [
            ["3000.00000000", "1.00000000"],
            ["2999.00000000", "1.00000000"],
            ["2998.00000000", "1.00000000"],
        ],
        "asks": [
            ["3001.50000000", "0.25000000"],
            ["3002.50000000", "0.25000000"],
            ["3003.50000000", "0.25000000"],
        ],
    }
    assert rest.depth(query, None, 0).json() == {"lastUpdateId": 0, "bids": [], "asks": []}
    unavailable = rest.unavailable(query)
    assert _error(unavailable, -1001, status=503).startswith("Internal error")


@pytest.mark.parametrize(
    ("query", "code", "msg"),
    [
        ("", -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
        ("symbol=", -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
        ("symbol=ethusd", -1100, "Illegal characters found in parameter 'symbol'; legal range is "),
        ("symbol=FOOUSD", -1121, "Invalid symbol."),
        ("symbol=ETHUSD&limit=abc", -1100, "Illegal characters found in parameter 'limit'"),
        ("symbol=ETHUSD&limit=0", -1130, "Data sent for parameter 'limit' is not valid."),
        ("symbol=ETHUSD&symbol=ETHUSD", -1101, "Duplicate values for a parameter detected."),
        ("symbol=ETHUSD&depth=5", -1104, "read '1' parameter(s) but was sent '2'."),
        ("symbol=ETHUSD&symbolStatus=HALT", -1220, "status does not match"),
    ],
)
def test_depth_errors(query, code, msg) -> None:
    assert msg in _error(_get(_rest(), f"/api/v3/depth?{query}"), code)


def test_unknown_endpoints_and_extra_parameters() -> None:
    _error(_get(_rest(), "/api/v3/ticker/bookTicker?symbol=BTCUSD"), -1020, status=404)
    _error(_get(_rest(), "/api/v3/ping?x=1"), -1104)
