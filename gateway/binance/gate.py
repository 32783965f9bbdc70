"""The gateway's gatekeeping in front of the Binance dialect, the same on the shared port and on its own.

A stream upgrade goes through the gateway's admission (``admit``, the one ``/ws`` uses:
shutting down, token, Origin, connections per IP and per process); a REST request needs a
valid token when tokens are set, as ``/snapshot`` does. Without this a Binance path would be
a way around every limit the native protocol has.

Binance clients can carry the token as ``?token=``, as ``Authorization: Bearer <token>``, or
in ``X-MBX-APIKEY`` (the header in which they already send an API key). ``token`` is taken
out of the query before the dialect reads it, since Binance answers a parameter it does not
expect with -1104. A repeated gatekeeping header is refused (-1101) rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from urllib.parse import unquote_plus, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from gateway.binance.dialect import BinanceDialect
from gateway.binance.rest import BinanceRestError
from gateway.core.limits import request_token, token_ok

Admit = Callable[[ServerConnection, Request, str], Response | None]

API_KEY_HEADER = "X-MBX-APIKEY"
_SINGLE = ("Upgrade", "Authorization", "Origin", API_KEY_HEADER)
UNAUTHORIZED = BinanceRestError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


class BinanceGate:
    """``process_request`` for Binance paths: the gateway's checks first, then the dialect."""

    def __init__(self, dialect: BinanceDialect, admit: Admit, tokens: frozenset[str]) -> None:
        self.dialect = dialect
        self._admit = admit
        self._tokens = tokens

    async def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        counters = self.dialect.counters
        if any(len(request.headers.get_all(name)) > 1 for name in _SINGLE):
            counters["refused_repeated_header"] += 1
            return self.dialect.error_response(
                BinanceRestError(-1101, "Duplicate values for a parameter detected.")
            )
        request = _bearer_from_api_key(request)
        query = urlsplit(request.path).query
        if request.headers.get("Upgrade", "").lower() == "websocket":
            refusal = self._admit(conn, request, query)
            if refusal is not None:
                counters["refused_handshakes"] += 1
                return refusal
        elif self._tokens and not token_ok(
            request_token(query, request.headers.get("Authorization")), self._tokens
        ):
            counters["refused_unauthorized"] += 1
            return self.dialect.error_response(UNAUTHORIZED)
        return await self.dialect.process_request(conn, _without_token(request))


def _bearer_from_api_key(request: Request) -> Request:
    """``X-MBX-APIKEY: t`` counts as ``Authorization: Bearer t`` (an explicit Authorization wins)."""
    key = request.headers.get(API_KEY_HEADER)
    if not key or "Authorization" in request.headers:
        return request
    headers = Headers(request.headers.raw_items())
    headers["Authorization"] = f"Bearer {key.strip()}"
    return replace(request, headers=headers)


def _without_token(request: Request) -> Request:
    """The request with every ``token`` parameter removed and the others left byte for byte."""
    path, sep, query = request.path.partition("?")
    if not sep:
        return request
    kept = [part for part in query.split("&") if unquote_plus(part.partition("=")[0]) != "token"]
    if len(kept) == len(query.split("&")):
        return request
    return replace(request, path=f"{path}?{'&'.join(kept)}" if kept else path)
