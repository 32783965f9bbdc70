"""``/book``: a live order-book page served by the gateway itself (issue 16).

``GET /book`` and ``GET /book/<PAIR>`` answer the page (``book_page.html``), ``GET
/book/book_page.js`` its script: the TypeScript client (``clients/js``) and the page, bundled
by esbuild (``npm run build`` there writes it; CI checks the committed copy is current). Both
are package data read once, like the dashboard's page: no CDN, nothing from the internet. The
page then talks to this gateway as any client does (``/pairs``, ``/ws``), so a token or an
Origin allowlist applies to it as to everyone.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from gateway.routes import ProcessRequest, Route, under

PAGE_PATH = "/book"
SCRIPT_PATH = "/book/book_page.js"


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


def book_page_route(otherwise: ProcessRequest) -> Route:
    """``/book`` and ``/book/<PAIR>`` for the gateway's route table; a path under ``/book`` that
    is no page goes to ``otherwise`` (the native REST answers, which say 404)."""
    page = BookPage()

    async def answer(conn: ServerConnection, request: Request) -> Response | None:
        found = page.answer(urlsplit(request.path).path)
        return found if found is not None else await otherwise(conn, request)

    return Route("book page", under(PAGE_PATH), answer)
