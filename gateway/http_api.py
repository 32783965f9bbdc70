"""HTTP on the WebSocket port: the handshake's gatekeeping, and ``/snapshot``, ``/pairs``, ``/health``.

Runs as websockets' ``process_request``: a request for ``/ws`` is checked (shutting down,
token, Origin, connection limits) and then goes on to the WebSocket handshake; anything
else is answered here. Every answer other than the upgrade is JSON, errors shaped like the
``error`` message.
"""

from __future__ import annotations

import http
from urllib.parse import parse_qs, urlsplit

import orjson
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from gateway.health import health_report
from gateway.hub import Hub
from gateway.limits import Admission, Refusal, origin_ok, request_token, token_ok
from mdcore.codec import encode_snapshot
from mdcore.errors import IntegrityError

WS_PATH = "/ws"
MAX_DEPTH = 10_000


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


def error_response(status: int, code: str, message: str) -> Response:
    response = json_response(status, {"type": "error", "code": code, "message": message})
    if status == 405:
        response.headers["Allow"] = "GET"
    elif status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="bookcast"'
    return response


class HttpApi:
    def __init__(self, hub: Hub, admission: Admission) -> None:
        self.hub = hub
        self.admission = admission

    async def __call__(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == WS_PATH and request.method == "GET":
            return self.admit(conn, request, url.query)
        counters = self.hub.counters
        counters["http_requests"] += 1
        response = await self._rest(request, url.path, url.query)
        if response.status_code >= 400:
            counters.count_error(orjson.loads(response.body).get("code", "?"))
        return response

    def _refuse(self, refusal: Refusal) -> Response:
        counters = self.hub.counters
        counters["handshakes_refused"] += 1
        counters[refusal.counter] += 1
        counters.count_error(refusal.code)
        return error_response(refusal.status, refusal.code, refusal.message)

    def admit(self, conn: ServerConnection, request: Request, query: str) -> Response | None:
        """Gatekeeping of a WebSocket upgrade (any dialect): None admits it, else the refusal."""
        cfg = self.hub.cfg
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return error_response(426, "upgrade_required", f"{WS_PATH} is a WebSocket endpoint")
        if self.hub.shutting_down:
            return self._refuse(
                Refusal(503, "shutting_down", "this gateway is shutting down", "refused_shutting_down")
            )
        if cfg.tokens and not token_ok(
            request_token(query, request.headers.get("Authorization")), cfg.tokens
        ):
            return self._refuse(
                Refusal(401, "unauthorized", "a valid token is required (?token= or Authorization: Bearer)",
                        "refused_unauthorized")
            )  # fmt: skip
        if not origin_ok(request.headers.get("Origin"), cfg.origins):
            return self._refuse(
                Refusal(403, "forbidden_origin", "this Origin is not allowed", "refused_origin")
            )
        ip = str(conn.remote_address[0]) if conn.remote_address else "?"
        refusal = self.admission.admit(conn, ip)
        if refusal is not None:
            return self._refuse(refusal)
        return None  # on to the handshake; the admission is released when the TCP connection ends

    async def _rest(self, request: Request, path: str, query: str) -> Response:
        if request.method != "GET":
            return error_response(
                405, "method_not_allowed", f"{request.method[:20]} is not supported; use GET"
            )
        if path in ("/health", "/health/ready"):
            status, body = health_report(self.hub)
            return json_response(status, body)
        if path == "/health/live":
            return json_response(200, {"status": "ok", "live": True})
        if path == "/pairs":
            return json_response(200, {"pairs": sorted(await self.hub.offered_pairs())})
        if path.startswith("/snapshot/"):
            cfg = self.hub.cfg
            if cfg.tokens and not token_ok(
                request_token(query, request.headers.get("Authorization")), cfg.tokens
            ):
                return error_response(401, "unauthorized", "a valid token is required")
            return await self.snapshot(path.removeprefix("/snapshot/"), parse_qs(query))
        if path == WS_PATH:
            return error_response(426, "upgrade_required", f"{WS_PATH} is a WebSocket endpoint")
        return error_response(404, "not_found", f"no such endpoint: {path[:100]}")

    async def snapshot(self, pair: str, query: dict[str, list[str]]) -> Response:
        depth: int | None = None
        if "depth" in query:
            raw = query["depth"][0]
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_DEPTH:
                return error_response(400, "bad_request", f"depth must be an integer from 1 to {MAX_DEPTH}")
            depth = int(raw)
        if pair not in await self.hub.offered_pairs():
            return error_response(404, "unknown_pair", f"not offered here: {pair[:40]!r}")
        replica = self.hub.replicas.get(pair)
        if replica is not None and replica.live and replica.local is not None:
            if depth is None:
                try:
                    return json_response(200, None, replica.snapshot_bytes())
                except IntegrityError:
                    pass  # read it from Redis instead
            else:
                return json_response(200, None, encode_snapshot(replica.local.to_snapshot(depth)))
        try:
            local = await self.hub.link.load_book(pair)
        except (RedisError, OSError, IntegrityError) as exc:
            self.hub.counters["redis_read_errors"] += 1
            return error_response(503, "unavailable", f"cannot read the book: {exc}")
        if local is None:
            return error_response(404, "no_data", f"{pair} has no book yet")
        return json_response(200, None, encode_snapshot(local.to_snapshot(depth)))
