"""HTTP on the WebSocket port: the handshake's gatekeeping, and ``/snapshot``, ``/pairs``, ``/health``.

Runs as websockets' ``process_request``: a request for ``/ws`` is checked (shutting down,
token, Origin, connection limits) and then goes on to the WebSocket handshake; anything
else is answered here. Every answer other than the upgrade is JSON, errors shaped like the
``error`` message; no request, however malformed, gets a 500.

What REST can cost Redis is bounded: requests per client address (``rest_rate``, 429 with
``Retry-After``; the ``/health`` probes are exempt), one read per cold pair at a time and
reused briefly (:mod:`gateway.book_cache`), and the connection pool (503 ``busy``).
"""

from __future__ import annotations

import http
import math
import time
from urllib.parse import parse_qs, urlsplit

import orjson
from redis.exceptions import MaxConnectionsError, RedisError
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from gateway.book_cache import BookCache
from gateway.core.limits import Admission, RateByAddress, Refusal, origin_ok, request_token, token_ok
from gateway.health import health_report
from gateway.hub import Hub
from gateway.pipeline_watch import PipelineWatch
from mdcore.codec import encode_snapshot
from mdcore.errors import IntegrityError

WS_PATH = "/ws"
MAX_DEPTH = 10_000
UNLIMITED_PATHS = frozenset({"/health", "/health/ready", "/health/live"})  # probes are never refused
BUSY_RETRY_S = 1


class DuplicateHeaderError(LookupError):
    """A header that must appear at most once appeared more often: the request is refused (400)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def single_header(headers: Headers, name: str) -> str | None:
    """The value of a header allowed once; None if absent. ``headers.get`` would raise a bare
    ``MultipleValuesError`` (a 500) on a repeat: this says which header it was."""
    values = headers.get_all(name)
    if len(values) > 1:
        raise DuplicateHeaderError(name)
    return values[0] if values else None


def wants_upgrade(headers: Headers) -> bool:
    """Whether a request asks for a WebSocket (a repeated ``Upgrade`` too: admission refuses it)."""
    return any(value.strip().lower() == "websocket" for value in headers.get_all("Upgrade"))


def parse_depth(raw: str) -> int | None:
    """``depth`` as an integer from 1 to :data:`MAX_DEPTH`, or None if it is anything else.

    ASCII digits only and a bounded length: ``str.isdigit`` accepts ``"²"`` and ``int()``
    refuses more than 4,300 digits, and either used to escape as a 500.
    """
    if not (0 < len(raw) <= len(str(MAX_DEPTH)) and raw.isascii() and raw.isdigit()):
        return None
    depth = int(raw)
    return depth if 1 <= depth <= MAX_DEPTH else None


def json_response(status: int, body: object, data: bytes | None = None) -> Response:
    payload = data if data is not None else orjson.dumps(body)
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Cache-Control", "no-store"),
        ]
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, payload)


def error_response(status: int, code: str, message: str, retry_after_s: float | None = None) -> Response:
    response = json_response(status, {"type": "error", "code": code, "message": message})
    if status == 405:
        response.headers["Allow"] = "GET"
    elif status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="bookcast"'
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return response


def duplicate_header_response(exc: DuplicateHeaderError) -> Response:
    return error_response(400, "bad_request", f"the {exc.name} header may appear only once")


def _address(conn: ServerConnection) -> str:
    return str(conn.remote_address[0]) if conn.remote_address else "?"


class HttpApi:
    def __init__(self, hub: Hub, admission: Admission, watch: PipelineWatch | None = None) -> None:
        self.hub = hub
        self.admission = admission
        self.watch = watch
        cfg = hub.cfg
        self.rest_limit = RateByAddress(cfg.rest_rate, cfg.rest_burst)
        self.books = BookCache(hub.link.load_book, cfg.snapshot_cache_s)

    async def __call__(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == WS_PATH and request.method == "GET":
            return self.admit(conn, request, url.query)
        counters = self.hub.counters
        counters["http_requests"] += 1
        response = self._throttle(conn, url.path)
        if response is None:
            try:
                response = await self._rest(request, url.path, url.query)
            except DuplicateHeaderError as exc:
                response = duplicate_header_response(exc)
        if response.status_code >= 400:
            counters.count_error(orjson.loads(response.body).get("code", "?"))
        return response

    def _throttle(self, conn: ServerConnection, path: str) -> Response | None:
        """429 with ``Retry-After`` if this address is over its REST rate; None lets it through."""
        if path in UNLIMITED_PATHS:
            return None
        wait_s = self.rest_limit.retry_after(_address(conn), time.monotonic())
        if wait_s is None:
            return None
        cfg = self.hub.cfg
        return error_response(
            429, "rate_limited",
            f"more than {cfg.rest_rate:g} requests/s (bursts of {cfg.rest_burst}) from this address",
            wait_s,
        )  # fmt: skip

    def _refuse(self, refusal: Refusal) -> Response:
        counters = self.hub.counters
        counters["handshakes_refused"] += 1
        counters[refusal.counter] += 1
        counters.count_error(refusal.code)
        return error_response(refusal.status, refusal.code, refusal.message, refusal.retry_after_s)

    def admit(self, conn: ServerConnection, request: Request, query: str) -> Response | None:
        """Gatekeeping of a WebSocket upgrade (any dialect): None admits it, else the refusal."""
        try:
            return self._admit(conn, request, query)
        except DuplicateHeaderError as exc:
            self.hub.counters.count_error("bad_request")
            return duplicate_header_response(exc)

    def _admit(self, conn: ServerConnection, request: Request, query: str) -> Response | None:
        cfg = self.hub.cfg
        headers = request.headers
        if (single_header(headers, "Upgrade") or "").strip().lower() != "websocket":
            return error_response(426, "upgrade_required", f"{WS_PATH} is a WebSocket endpoint")
        if self.hub.shutting_down:
            return self._refuse(
                Refusal(503, "shutting_down", "this gateway is shutting down", "refused_shutting_down")
            )
        overloaded = self.hub.overload.refusal()
        if overloaded is not None:
            return self._refuse(overloaded)
        authorization, origin = single_header(headers, "Authorization"), single_header(headers, "Origin")
        if cfg.tokens and not token_ok(request_token(query, authorization), cfg.tokens):
            return self._refuse(
                Refusal(401, "unauthorized", "a valid token is required (?token= or Authorization: Bearer)",
                        "refused_unauthorized")
            )  # fmt: skip
        if not origin_ok(origin, cfg.origins):
            return self._refuse(
                Refusal(403, "forbidden_origin", "this Origin is not allowed", "refused_origin")
            )
        transport = conn.transport
        if transport is None or transport.is_closing():
            # The client left while its request waited for this turn (a storm's handshake
            # timeouts): its connection_lost has run already, so a slot counted now would
            # never be given back. Nobody reads this answer.
            self.hub.counters["handshakes_abandoned"] += 1
            return error_response(400, "gone", "the connection closed during its handshake")
        refusal = self.admission.admit(conn, _address(conn))
        if refusal is not None:
            return self._refuse(refusal)
        return None  # on to the handshake; the admission is released when the TCP connection ends

    async def _rest(self, request: Request, path: str, query: str) -> Response:
        if request.method != "GET":
            return error_response(
                405, "method_not_allowed", f"{request.method[:20]} is not supported; use GET"
            )
        if path in ("/health", "/health/ready"):
            status, body = health_report(self.hub, self.watch)
            return json_response(status, body)
        if path == "/health/live":
            return json_response(200, {"status": "ok", "live": True})
        if path == "/pairs":
            return json_response(200, {"pairs": sorted(await self.hub.offered_pairs())})
        if path.startswith("/snapshot/"):
            cfg = self.hub.cfg
            if cfg.tokens and not token_ok(
                request_token(query, single_header(request.headers, "Authorization")), cfg.tokens
            ):
                return error_response(401, "unauthorized", "a valid token is required")
            return await self.snapshot(path.removeprefix("/snapshot/"), parse_qs(query))
        if path == WS_PATH:
            return error_response(426, "upgrade_required", f"{WS_PATH} is a WebSocket endpoint")
        return error_response(404, "not_found", f"no such endpoint: {path[:100]}")

    async def snapshot(self, pair: str, query: dict[str, list[str]]) -> Response:
        depth: int | None = None
        if "depth" in query:
            depth = parse_depth(query["depth"][0])
            if depth is None:
                return error_response(400, "bad_request", f"depth must be an integer from 1 to {MAX_DEPTH}")
        if pair not in await self.hub.offered_pairs():
            return error_response(404, "unknown_pair", f"not offered here: {pair[:40]!r}")
        replica = self.hub.replica(pair)
        if replica is not None and replica.live and replica.local is not None:
            if depth is None:
                try:
                    return json_response(200, None, replica.snapshot_bytes())
                except IntegrityError:
                    pass  # read it from Redis instead
            else:
                return json_response(200, None, encode_snapshot(replica.local.to_snapshot(depth)))
        try:
            cached = await self.books.get(pair)  # one Redis read per pair at a time, reused briefly
        except MaxConnectionsError:
            return error_response(503, "busy", "too many Redis reads in flight; retry shortly", BUSY_RETRY_S)
        except (RedisError, OSError, IntegrityError) as exc:
            self.hub.counters["redis_read_errors"] += 1
            return error_response(503, "unavailable", f"cannot read the book: {exc}", BUSY_RETRY_S)
        if cached.book is None:
            return error_response(404, "no_data", f"{pair} has no book yet")
        if depth is None:
            return json_response(200, None, cached.full_snapshot())
        return json_response(200, None, encode_snapshot(cached.book.to_snapshot(depth)))
