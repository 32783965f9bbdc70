"""gateway.routes: the port's paths in one table, first match wins, the native protocol last."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gateway.routes import Route, Router, exact, under


def answering(name: str, calls: list[str]):
    async def process_request(conn, request):
        calls.append(name)
        return name

    async def serve(conn):
        calls.append(f"serve {name}")

    return process_request, serve


def table(calls: list[str]) -> Router:
    page, _ = answering("page", calls)
    feed, feed_serve = answering("feed", calls)
    native, native_serve = answering("native", calls)
    return Router([
        Route("page", under("/book"), page),
        Route("feed", exact("/dashboard/ws"), feed, feed_serve),
        Route("native", lambda _path: True, native, native_serve),
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/book", "page"), ("/book/BTC-USD", "page"), ("/bookings", "native"),
        ("/dashboard/ws?token=x", "feed"), ("/dashboard/wsx", "native"), ("/ws", "native"),
        ("/health", "native"),
    ],
)  # fmt: skip
async def test_the_first_route_whose_paths_match_answers(path: str, route: str) -> None:
    calls: list[str] = []
    assert await table(calls).process_request(None, SimpleNamespace(path=path)) == route  # type: ignore[arg-type]
    assert calls == [route]


async def test_after_the_upgrade_the_route_serves_and_http_only_routes_fall_back_to_native() -> None:
    calls: list[str] = []
    router = table(calls)
    await router.handler(SimpleNamespace(request=SimpleNamespace(path="/dashboard/ws")))
    await router.handler(SimpleNamespace(request=SimpleNamespace(path="/ws")))
    await router.handler(SimpleNamespace(request=None))
    assert calls == ["serve feed", "serve native", "serve native"]


def test_a_table_needs_the_native_route() -> None:
    with pytest.raises(ValueError, match="native"):
        Router([])
