"""Binance Spot REST market data: ``ping``, ``time``, ``exchangeInfo``, ``depth``; pure builders.

Answers are ``(status, headers, body)`` for the caller to wrap in its HTTP library. As on
Binance (rest-api.md, errors.md): parameters come in any order; a repeated parameter is
-1101, an unexpected one -1104, a missing one -1102, a malformed one -1100 quoting the legal
pattern, an unknown symbol -1121 "Invalid symbol."; errors are HTTP 400 with
``{"code":..,"msg":..}``. Every answer carries ``X-MBX-USED-WEIGHT-1M`` (and the older
``X-MBX-USED-WEIGHT``): the request weight this client IP used in the current minute, each
endpoint costing what Binance charges; above the limit the answer is 429 / -1003 with
``Retry-After``. Depth needs a book, which only the caller can fetch, so :meth:`BinanceRest.handle`
returns a :class:`DepthQuery` for it to complete with :meth:`BinanceRest.depth`.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from gateway.binance.events import book_levels8
from gateway.binance.symbols import DECIMALS, SYMBOL_PATTERN, SymbolInfo, SymbolTable
from mdcore.book import ASK, BID
from mdcore.local_book import LocalBook

DEPTH_DEFAULT_LIMIT = 100
DEPTH_MAX_LIMIT = 5000  # "If limit > 5000, only 5000 entries will be returned."
EXCHANGE_INFO_WEIGHT = 20
_MAX_VALUE = "10000000000.00000000"  # PRICE_FILTER maxPrice / LOT_SIZE maxQty: on every grid
_SYMBOL_RANGE = "^[A-Z0-9-_.]{1,20}$"
_SYMBOLS_RANGE = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'
_STATUSES = ("TRADING", "HALT", "BREAK")


def depth_weight(limit: int) -> int:
    """Binance's weight for ``GET /api/v3/depth`` by the (clamped) limit."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


@dataclass(frozen=True, slots=True)
class RestAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True, slots=True)
class DepthQuery:
    """A valid depth request, already charged: the caller fetches the pair's book and calls ``depth``."""

    info: SymbolInfo
    limit: int
    used_weight: int


class BinanceRestError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


class WeightWindow:
    """Request weight per client IP in the current calendar minute ("a 1 MINUTE interval starts every
    minute"). Only the current minute is kept, so memory is bounded by one minute's clients."""

    __slots__ = ("_minute", "_used")

    def __init__(self) -> None:
        self._minute = -1
        self._used: dict[str, int] = {}

    def charge(self, ip: str, weight: int, now_ms: int) -> int:
        minute = now_ms // 60_000
        if minute != self._minute:
            self._minute, self._used = minute, {}
        used = self._used.get(ip, 0) + weight
        self._used[ip] = used
        return used


def _mandatory(name: str) -> BinanceRestError:
    return BinanceRestError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _illegal(name: str, legal: str) -> BinanceRestError:
    return BinanceRestError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def _params(query: str, allowed: frozenset[str]) -> dict[str, str]:
    pairs = parse_qsl(query, keep_blank_values=True)
    params = dict(pairs)
    if len(params) != len(pairs):
        raise BinanceRestError(-1101, "Duplicate values for a parameter detected.")
    read = sum(1 for key in params if key in allowed)
    if read != len(params):
        raise BinanceRestError(
            -1104,
            f"Not all sent parameters were read; read '{read}' parameter(s) but was sent '{len(params)}'.",
        )
    return params


def _symbol(params: dict[str, str], table: SymbolTable) -> SymbolInfo:
    raw = params.get("symbol", "")
    if not raw:
        raise _mandatory("symbol")
    if not SYMBOL_PATTERN.fullmatch(raw):
        raise _illegal("symbol", _SYMBOL_RANGE)
    info = table.by_symbol(raw)
    if info is None:
        raise BinanceRestError(-1121, "Invalid symbol.")
    return info


def _limit(params: dict[str, str]) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEPTH_DEFAULT_LIMIT
    if not raw:
        raise _mandatory("limit")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 20:
        raise _illegal("limit", "^[0-9]{1,20}$")
    limit = int(raw)
    if limit < 1:
        raise BinanceRestError(-1130, "Data sent for parameter 'limit' is not valid.")
    return min(limit, DEPTH_MAX_LIMIT)


def _symbol_status(params: dict[str, str]) -> str | None:
    status = params.get("symbolStatus")
    if status is not None and status not in _STATUSES:
        raise BinanceRestError(-1122, "Invalid symbolStatus.")
    return status


def _symbols_list(raw: str, table: SymbolTable) -> list[SymbolInfo]:
    try:
        names = orjson.loads(raw)
    except orjson.JSONDecodeError:
        names = None
    if type(names) is not list or not all(type(n) is str and SYMBOL_PATTERN.fullmatch(n) for n in names):
        raise _illegal("symbols", _SYMBOLS_RANGE)
    if not names:
        raise _mandatory("symbols")
    if len(set(names)) != len(names):
        raise BinanceRestError(-1151, "Symbol is present multiple times in the list.")
    found = [table.by_symbol(name) for name in names]
    if any(info is None for info in found):
        raise BinanceRestError(-1121, "Invalid symbol.")
    return [info for info in found if info is not None]


def _permissions(raw: str) -> list[Any]:
    if raw.startswith("["):
        try:
            values = orjson.loads(raw)
        except orjson.JSONDecodeError:
            values = None
        if type(values) is not list:
            raise _illegal("permissions", '^\\[("[A-Z_0-9]{1,20}"(,"[A-Z_0-9]{1,20}"){0,}){0,1}\\]$')
        return values
    return [raw]


def symbol_entry(info: SymbolInfo, show_permission_sets: bool = True) -> dict[str, Any]:
    """One ``symbols[]`` entry of exchangeInfo, in Binance's field order; filters from the catalogue grid."""
    return {
        "symbol": info.symbol,
        "status": "TRADING",
        "baseAsset": info.base,
        "baseAssetPrecision": DECIMALS,
        "quoteAsset": info.quote,
        "quotePrecision": DECIMALS,
        "quoteAssetPrecision": DECIMALS,
        "baseCommissionPrecision": DECIMALS,
        "quoteCommissionPrecision": DECIMALS,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": False,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": info.tick_size,
                "maxPrice": _MAX_VALUE,
                "tickSize": info.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": info.step_size,
                "maxQty": _MAX_VALUE,
                "stepSize": info.step_size,
            },
        ],
        "permissions": ["SPOT"],
        "permissionSets": [["SPOT"]] if show_permission_sets else [],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }


class BinanceRest:
    """The REST endpoints under ``/api/v3``; ``clock_ms`` is wall time in ms (passed in, for tests)."""

    def __init__(self, weight_limit: int, clock_ms: Callable[[], int]) -> None:
        self.weight_limit = weight_limit
        self.clock_ms = clock_ms
        self.window = WeightWindow()

    # --- entry points ---------------------------------------------------------------------

    def handle(self, path: str, query: str, ip: str, table: SymbolTable) -> RestAnswer | DepthQuery:
        """Answer ``GET path?query`` (path like ``/api/v3/depth``), or say which book depth needs.

        Every request is charged its weight, failed ones too (a bad depth limit costs 5).
        """
        weight, outcome = self._dispatch(path.rstrip("/"), query, table)
        used = self.window.charge(ip, weight, self.clock_ms())
        if used > self.weight_limit:
            return self._over_limit(used)
        if isinstance(outcome, BinanceRestError):
            return self.error(outcome, used)
        if isinstance(outcome, DepthQuery):
            return DepthQuery(outcome.info, outcome.limit, used)
        return self._json(200, outcome, used)

    def depth(self, query: DepthQuery, local: LocalBook | None, update_id: int) -> RestAnswer:
        """The depth answer for ``local`` (None: no book yet, so an empty one) at ``update_id``."""
        if local is None:
            bids: list[list[str]] = []
            asks: list[list[str]] = []
        else:
            bids = book_levels8(local, BID, query.limit)
            asks = book_levels8(local, ASK, query.limit)
        return self._json(200, {"lastUpdateId": update_id, "bids": bids, "asks": asks}, query.used_weight)

    def unavailable(self, query: DepthQuery) -> RestAnswer:
        """The book cannot be read right now (Redis down): Binance's -1001, retry later."""
        exc = BinanceRestError(
            -1001, "Internal error; unable to process your request. Please try again.", 503
        )
        return self.error(exc, query.used_weight)

    def error(self, exc: BinanceRestError, used: int) -> RestAnswer:
        return self._json(exc.status, {"code": exc.code, "msg": exc.msg}, used)

    # --- internals ------------------------------------------------------------------------

    def _dispatch(
        self, endpoint: str, query: str, table: SymbolTable
    ) -> tuple[int, dict[str, Any] | DepthQuery | BinanceRestError]:
        """(weight, outcome): the body of a 200, a depth query to complete, or the error to answer."""
        weight = 1
        try:
            if endpoint == "/api/v3/depth":
                weight = 5
                params = _params(query, frozenset({"symbol", "limit", "symbolStatus"}))
                limit = _limit(params)
                weight = depth_weight(limit)
                info = _symbol(params, table)
                status = _symbol_status(params)
                if status is not None and status != "TRADING":
                    raise BinanceRestError(
                        -1220, "The symbol's status does not match the requested symbolStatus."
                    )
                return weight, DepthQuery(info, limit, 0)
            if endpoint == "/api/v3/ping":
                _params(query, frozenset())
                return weight, {}
            if endpoint == "/api/v3/time":
                _params(query, frozenset())
                return weight, {"serverTime": self.clock_ms()}
            if endpoint == "/api/v3/exchangeInfo":
                weight = EXCHANGE_INFO_WEIGHT
                return weight, self._exchange_info(query, table)
            raise BinanceRestError(-1020, "This operation is not supported.", status=404)
        except BinanceRestError as exc:
            return weight, exc

    def _over_limit(self, used: int) -> RestAnswer:
        now = self.clock_ms()
        retry_after = max(1, (60_000 - now % 60_000 + 999) // 1000)
        msg = (
            f"Too much request weight used; current limit is {self.weight_limit} request weight per "
            "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."
        )
        return self._json(429, {"code": -1003, "msg": msg}, used, (("Retry-After", str(retry_after)),))

    def _exchange_info(self, query: str, table: SymbolTable) -> dict[str, Any]:
        allowed = frozenset({"symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus"})
        params = _params(query, allowed)
        picked = [key for key in ("symbol", "symbols") if key in params]
        if len(picked) > 1 or (picked and ("permissions" in params or "symbolStatus" in params)):
            raise BinanceRestError(-1128, "Combination of optional parameters invalid.")
        if "symbol" in params:
            selected = [_symbol(params, table)]
        elif "symbols" in params:
            selected = _symbols_list(params["symbols"], table)
        else:
            selected = list(table)
            status = _symbol_status(params)
            if status is not None and status != "TRADING":
                selected = []
            if "permissions" in params and "SPOT" not in _permissions(params["permissions"]):
                selected = []
        show = params.get("showPermissionSets", "true")
        if show not in ("true", "false"):
            raise _illegal("showPermissionSets", "true|false")
        return {
            "timezone": "UTC",
            "serverTime": self.clock_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.weight_limit,
                },
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [symbol_entry(info, show == "true") for info in selected],
        }

    def _json(self, status: int, body: Any, used: int, extra: tuple[tuple[str, str], ...] = ()) -> RestAnswer:
        data = orjson.dumps(body)
        headers = (
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Date", email.utils.formatdate(self.clock_ms() / 1000, usegmt=True)),
            ("X-MBX-USED-WEIGHT", str(used)),
            ("X-MBX-USED-WEIGHT-1M", str(used)),
            ("Cache-Control", "no-store"),
            *extra,
        )
        return RestAnswer(status, headers, data)
