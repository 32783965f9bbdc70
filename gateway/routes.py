"""Every path the gateway's port serves, in one table, first match wins.

A route says which paths it takes, what answers the HTTP request (a response, or None to go
on with the WebSocket upgrade) and, for a WebSocket path, what serves the connection after
the upgrade. The native protocol (``/ws`` and the REST paths of :mod:`gateway.http_api`) is
the last route and takes every path the others do not. Admission (token, Origin, connection
limits, overload) is each WebSocket route's ``process_request``: :meth:`HttpApi.admit`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

ProcessRequest = Callable[[ServerConnection, Request], Awaitable[Response | None]]
Handler = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Route:
    name: str  # for the table in docs/gateway.md and for logs
    matches: Callable[[str], bool]  # on the URL's path (no query)
    process_request: ProcessRequest
    serve: Handler | None = None  # the WebSocket after the upgrade; None: HTTP only


def exact(*paths: str) -> Callable[[str], bool]:
    wanted = frozenset(paths)
    return lambda path: path in wanted


def under(prefix: str) -> Callable[[str], bool]:
    """``prefix`` itself and every path below it."""
    return lambda path: path == prefix or path.startswith(prefix + "/")


class Router:
    """``process_request`` and the connection handler of the port, from the table."""

    def __init__(self, routes: Sequence[Route]) -> None:
        if not routes:
            raise ValueError("a router needs at least the native route")
        self.routes = tuple(routes)

    def route(self, raw_path: str) -> Route:
        path = urlsplit(raw_path).path
        for route in self.routes:
            if route.matches(path):
                return route
        return self.routes[-1]

    async def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        return await self.route(request.path).process_request(conn, request)

    async def handler(self, conn: Any) -> None:
        route = self.route(conn.request.path if conn.request is not None else "/")
        serve = route.serve if route.serve is not None else self.routes[-1].serve
        if serve is not None:
            await serve(conn)
