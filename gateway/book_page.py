"""``/book``: a live order-book page served by the gateway itself (issue 16).

``GET /book`` and ``GET /book/<PAIR>`` answer the page (``book_page.html``), ``GET
/book/book_page.js`` its script: the TypeScript client (``clients/js``) and the page, bundled
by esbuild (``npm run build`` there writes it; CI checks the committed copy is current). Both
are package data read once, like the dashboard's page: no CDN, nothing from the internet. The
page then talks to this gateway as any client does (``/pairs``, ``/ws``), so a token or an
Origin allowlist applies to it as to everyone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

PAGE_PATH = "/book"
SCRIPT_PATH = "/book/book_page.js"

Handler = Callable[[ServerConnection], Awaitable[None]]
ProcessRequest = Callable[[ServerConnection, Request], Awaitable[Response | None]]


def _asset(name: str) -> bytes:
    return resources.files("gateway").joinpath(name).read_bytes()


def _response(body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    )
    return Response(200, "OK", headers, body)


class BookPage:
    """The page and its script, read from the package once."""

    def __init__(self) -> None:
        self.html = _asset("book_page.html")
        self.script = _asset("book_page.js")

    def answer(self, path: str) -> Response | None:
        """The response for ``path`` if it is the page's, else None (the request goes on)."""
        if path == SCRIPT_PATH:
            return _response(self.script, "text/javascript; charset=utf-8")
        if path in (PAGE_PATH, PAGE_PATH + "/"):
            return _response(self.html, "text/html; charset=utf-8")
        pair = path.removeprefix(PAGE_PATH + "/")
        if path.startswith(PAGE_PATH + "/") and "/" not in pair and 0 < len(pair) <= 40:
            return _response(self.html, "text/html; charset=utf-8")  # the page reads the pair from its URL
        return None


def with_book_page(handler: Handler, process_request: ProcessRequest) -> tuple[Handler, ProcessRequest]:
    """The gateway's handler and ``process_request`` with ``/book`` answered first."""
    page = BookPage()

    async def routed_request(conn: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == PAGE_PATH or path.startswith(PAGE_PATH + "/"):
            answer = page.answer(path)
            if answer is not None:
                return answer
        return await process_request(conn, request)

    return handler, routed_request
