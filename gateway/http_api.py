"""REST on the WebSocket port: ``/snapshot/{pair}``, ``/pairs``, ``/health``; JSON everywhere.

Runs as websockets' ``process_request``: a request for ``/ws`` goes on to the WebSocket
handshake, anything else is answered here.
"""

from __future__ import annotations

import http
import time
from urllib.parse import parse_qs, urlsplit

import orjson
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from gateway.hub import Hub
from mdcore.codec import encode_snapshot
from mdcore.errors import IntegrityError

WS_PATH = "/ws"


def json_response(status: int, body: object) -> Response:
    data = orjson.dumps(body)
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
        ]
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, data)


def error_response(status: int, code: str, message: str) -> Response:
    return json_response(status, {"type": "error", "code": code, "message": message})


class HttpApi:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.started = time.monotonic()

    async def __call__(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == WS_PATH:
            if request.headers.get("Upgrade", "").lower() != "websocket":
                return error_response(426, "upgrade_required", f"{WS_PATH} is a WebSocket endpoint")
            return None
        self.hub.counters["http_requests"] += 1
        query = parse_qs(url.query)
        if url.path == "/health":
            return self.health()
        if url.path == "/pairs":
            return json_response(200, {"pairs": sorted(await self.hub.offered_pairs())})
        if url.path.startswith("/snapshot/"):
            return await self.snapshot(url.path.removeprefix("/snapshot/"), query)
        return error_response(404, "not_found", f"no such endpoint: {url.path[:100]}")

    async def snapshot(self, pair: str, query: dict[str, list[str]]) -> Response:
        depth: int | None = None
        if "depth" in query:
            raw = query["depth"][0]
            if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
                return error_response(400, "bad_request", "depth must be an integer from 1 to 10000")
            depth = int(raw)
        if pair not in await self.hub.offered_pairs():
            return error_response(404, "unknown_pair", f"not offered here: {pair[:40]!r}")
        replica = self.hub.replicas.get(pair)
        if replica is not None and replica.live and replica.local is not None:
            local = replica.local
        else:
            try:
                local = await self.hub.link.load_book(pair)
            except (RedisError, OSError, IntegrityError) as exc:
                return error_response(503, "unavailable", f"cannot read the book: {exc}")
            if local is None:
                return error_response(404, "no_data", f"{pair} has no book yet")
        body = encode_snapshot(local.to_snapshot(depth))
        headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return Response(200, "OK", headers, body)

    def health(self) -> Response:
        hub = self.hub
        now = time.monotonic()
        pairs = {}
        stale = []
        for pair, replica in hub.replicas.items():
            age = now - replica.last_update
            local = replica.local
            pairs[pair] = {
                "state": replica.state.value,
                "seq": local.seq if local else None,
                "epoch": local.epoch if local else None,
                "age_s": round(age, 3),
                "subscribers": len(hub.subscribers.get(pair, ())),
            }
            if not replica.live:  # a quiet pair is fine; a replica that cannot load is not
                stale.append(pair)
        ready = hub.link.up and not stale
        body = {
            "status": "ok" if ready else "degraded",
            "live": True,
            "ready": ready,
            "redis": "up" if hub.link.up else "down",
            "stale_pairs": stale,
            "connections": len(hub.sessions),
            "uptime_s": round(now - self.started, 1),
            "pairs": pairs,
        }
        return json_response(200 if ready else 503, body)
