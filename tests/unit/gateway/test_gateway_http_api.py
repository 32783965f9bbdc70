"""gateway.http_api: hostile requests get their documented answer (400, 429, 503), never a 500.

A real hub (its Redis never contacted) with a fake book read, so each case shows what the
gateway answers; the HTTP server around it is covered by tests/integration/test_gateway_limits.py.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
import pytest
from redis.exceptions import MaxConnectionsError
from websockets.datastructures import Headers
from websockets.http11 import Request

from gateway.config import GatewayConfig
from gateway.core.limits import Admission
from gateway.http_api import HttpApi, parse_depth, single_header, wants_upgrade
from gateway.hub import Hub
from tests.unit.gateway.gateway_fakes import Loads, live_replica
from tests.unit.gateway.gateway_fakes import make_hub as hub_on_memory
from tests.unit.gateway.md_service_free_fixtures import Stream


def make_hub(**settings: object) -> Hub:
    return Hub(GatewayConfig(redis_url="redis://127.0.0.1:1/0", pairs=("BTC-USD", "ETH-USD"), **settings))


# --- HTTP: parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "depth"),
    [("1", 1), ("10000", 10000), ("00007", 7), ("0", None), ("10001", None), ("", None), ("-1", None),
     ("²", None), ("١", None), ("5" * 5000, None), (" 5", None), ("5.0", None)],
)  # fmt: skip
def test_depth_is_ascii_digits_in_range(raw: str, depth: int | None) -> None:
    assert parse_depth(raw) == depth


def test_headers_allowed_once() -> None:
    headers = Headers([("Origin", "https://a"), ("Upgrade", "websocket"), ("Upgrade", "websocket")])
    assert single_header(headers, "origin") == "https://a"
    assert single_header(headers, "Authorization") is None
    with pytest.raises(LookupError, match="Upgrade"):
        single_header(headers, "Upgrade")
    assert wants_upgrade(headers) and not wants_upgrade(Headers([("Upgrade", "h2c")]))


# --- HTTP: answers -------------------------------------------------------------------------


def conn(ip: str = "10.0.0.1") -> SimpleNamespace:
    return SimpleNamespace(remote_address=(ip, 40000))


def get(path: str, *headers: tuple[str, str]) -> Request:
    return Request(path, Headers(list(headers)))


def body(response) -> dict:
    return orjson.loads(response.body)


def api_with(hub: Hub, loads: Loads | None = None) -> HttpApi:
    if loads is not None:
        hub.link.load_book = loads  # type: ignore[method-assign]

    async def offered() -> set[str]:
        return {"BTC-USD", "ETH-USD"}

    hub.offered_pairs = offered  # type: ignore[method-assign]
    return HttpApi(hub, Admission(10, 10))


async def test_bad_depths_and_repeated_headers_are_400_not_500() -> None:
    api = api_with(make_hub(tokens=frozenset({"t"})))
    for path in ("/snapshot/BTC-USD?depth=%C2%B2&token=t", f"/snapshot/BTC-USD?depth={'9' * 5000}&token=t"):
        response = await api(conn(), get(path))
        assert (response.status_code, body(response)["code"]) == (400, "bad_request"), path
    twice = (("Authorization", "Bearer t"), ("Authorization", "Bearer t"))
    response = await api(conn(), get("/snapshot/BTC-USD", *twice))
    assert (response.status_code, body(response)["code"]) == (400, "bad_request")
    upgrade = (("Upgrade", "websocket"), ("Connection", "Upgrade"))
    for repeated in (("Upgrade", "websocket"), ("Origin", "https://a"), ("Authorization", "Bearer t")):
        extra = (repeated, repeated) if repeated[0] != "Upgrade" else (repeated,)
        response = await api(conn(), get("/ws?token=t", *upgrade, *extra))
        assert response is not None, repeated
        assert (response.status_code, body(response)["code"]) == (400, "bad_request"), repeated
        assert repeated[0] in body(response)["message"]
    assert api.admission.total == 0  # none of them took a connection slot


async def test_concurrent_cold_snapshots_share_one_redis_read() -> None:
    stream = Stream("BTC-USD", 5)
    loads = Loads(stream.book_at(5))
    api = api_with(make_hub(rest_burst=100), loads)
    requests = [asyncio.create_task(api(conn(), get("/snapshot/BTC-USD"))) for _ in range(20)]
    requests.append(asyncio.create_task(api(conn(), get("/snapshot/BTC-USD?depth=1"))))
    await asyncio.sleep(0)  # every request is now waiting on the one read
    loads.release.set()
    responses = await asyncio.gather(*requests)
    assert loads.calls == 1
    assert {r.status_code for r in responses} == {200}
    assert len({r.body for r in responses[:-1]}) == 1 and body(responses[0])["seq"] == 5
    assert len(body(responses[-1])["bids"]) == 1
    again = await api(conn(), get("/snapshot/BTC-USD"))  # within snapshot_cache_s: no read
    assert again.body == responses[0].body and loads.calls == 1
    assert api.books.stats.reads == 1 and api.books.stats.shared == 20 and api.books.stats.hits == 1


async def test_an_exhausted_redis_pool_is_503_busy_with_retry_after() -> None:
    loads = Loads(MaxConnectionsError("all 32 Redis connections busy"))
    loads.release.set()
    api = api_with(make_hub(), loads)
    response = await api(conn(), get("/snapshot/ETH-USD"))
    assert (response.status_code, body(response)["code"]) == (503, "busy")
    assert response.headers["Retry-After"] == "1"
    assert api.hub.counters["errors_busy"] == 1


async def test_rest_is_rate_limited_per_address_with_retry_after_but_never_the_probes() -> None:
    api = api_with(make_hub(rest_rate=0.5, rest_burst=3))
    for _ in range(3):
        assert (await api(conn(), get("/pairs"))).status_code == 200
    refused = await api(conn(), get("/pairs"))
    assert (refused.status_code, body(refused)["code"]) == (429, "rate_limited")
    assert refused.headers["Retry-After"] == "2"  # one token at 0.5/s
    assert (await api(conn("10.0.0.2"), get("/pairs"))).status_code == 200  # another address
    for _ in range(10):
        assert (await api(conn(), get("/health/live"))).status_code == 200
    assert api.hub.counters["errors_rate_limited"] == 1


# --- HTTP: the endpoints ---------------------------------------------------------------------


async def test_a_live_pairs_snapshot_comes_from_its_replica_without_a_redis_read() -> None:
    hub, _link, stream = hub_on_memory()
    live_replica(hub, stream, at=20, recent_from=16)
    loads = Loads(None)
    api = api_with(hub, loads)
    full = await api(conn(), get("/snapshot/ETH-USD"))
    assert full.status_code == 200 and body(full)["seq"] == 20
    assert body(full)["bids"] == [list(level) for level in stream.book_at(20).to_snapshot().bids]
    top = await api(conn(), get("/snapshot/ETH-USD?depth=1"))
    assert top.status_code == 200 and len(body(top)["bids"]) == 1 and body(top)["seq"] == 20
    assert loads.calls == 0


async def test_snapshot_answers_for_unknown_pairs_pairs_without_a_book_and_an_unreadable_redis() -> None:
    no_book = Loads(None)
    no_book.release.set()
    api = api_with(make_hub(), no_book)
    unknown = await api(conn(), get("/snapshot/DOGE-USD"))
    assert (unknown.status_code, body(unknown)["code"]) == (404, "unknown_pair")
    empty = await api(conn(), get("/snapshot/BTC-USD"))
    assert (empty.status_code, body(empty)["code"]) == (404, "no_data")
    failing = Loads(ConnectionError("refused"))
    failing.release.set()
    api = api_with(make_hub(), failing)
    down = await api(conn(), get("/snapshot/BTC-USD"))
    assert (down.status_code, body(down)["code"]) == (503, "unavailable")
    assert down.headers["Retry-After"] == "1" and api.hub.counters["redis_read_errors"] == 1


async def test_pairs_probes_and_everything_else() -> None:
    api = api_with(make_hub())
    pairs = await api(conn(), get("/pairs"))
    assert (pairs.status_code, body(pairs)) == (200, {"pairs": ["BTC-USD", "ETH-USD"]})
    live = await api(conn(), get("/health/live"))
    assert (live.status_code, body(live)) == (200, {"status": "ok", "live": True})
    missing = await api(conn(), get("/nope"))
    assert (missing.status_code, body(missing)["code"]) == (404, "not_found")
    posted = await api(conn(), Request("/pairs", Headers(), method="POST"))
    assert (posted.status_code, body(posted)["code"]) == (405, "method_not_allowed")
    plain = await api(conn(), get("/ws"))  # no Upgrade header
    assert (plain.status_code, body(plain)["code"]) == (426, "upgrade_required")
    assert api.hub.counters["http_requests"] == 4  # the /ws request is gatekeeping, not REST
    assert api.hub.counters["errors_not_found"] == 1


# --- the WebSocket upgrade's gatekeeping -----------------------------------------------------


class Transport:
    def __init__(self, closing: bool = False) -> None:
        self.closing = closing

    def is_closing(self) -> bool:
        return self.closing


class WsConn:
    """A connection whose upgrade request is being checked (hashable: the admission counts it)."""

    def __init__(self, ip: str, closing: bool) -> None:
        self.remote_address = (ip, 40000)
        self.transport = Transport(closing)


def ws_conn(ip: str = "10.0.0.1", closing: bool = False) -> WsConn:
    return WsConn(ip, closing)


UPGRADE = (("Upgrade", "websocket"), ("Connection", "Upgrade"))


async def test_an_upgrade_is_admitted_only_with_token_and_origin_and_takes_a_slot() -> None:
    api = api_with(make_hub(tokens=frozenset({"t"}), origins=frozenset({"https://ok"})))
    no_token = await api(ws_conn(), get("/ws", *UPGRADE, ("Origin", "https://ok")))
    assert (no_token.status_code, body(no_token)["code"]) == (401, "unauthorized")
    foreign = await api(ws_conn(), get("/ws?token=t", *UPGRADE, ("Origin", "https://evil")))
    assert (foreign.status_code, body(foreign)["code"]) == (403, "forbidden_origin")
    assert api.admission.total == 0
    assert await api(ws_conn(), get("/ws?token=t", *UPGRADE, ("Origin", "https://ok"))) is None
    assert api.admission.total == 1
    counters = api.hub.counters
    assert (counters["refused_unauthorized"], counters["refused_origin"], counters["handshakes_refused"]) == (
        1,
        1,
        2,
    )


async def test_no_slot_for_a_client_gone_during_its_handshake_or_a_gateway_shutting_down() -> None:
    api = api_with(make_hub())
    gone = await api(ws_conn(closing=True), get("/ws", *UPGRADE))
    assert (gone.status_code, body(gone)["code"]) == (400, "gone")
    assert api.hub.counters["handshakes_abandoned"] == 1
    api.hub.shutting_down = True
    closing = await api(ws_conn(), get("/ws", *UPGRADE))
    assert (closing.status_code, body(closing)["code"]) == (503, "shutting_down")
    assert api.admission.total == 0


async def test_an_overloaded_gateway_answers_the_upgrade_503_with_retry_after_and_takes_no_slot() -> None:
    import orjson
    from websockets.datastructures import Headers
    from websockets.http11 import Request

    from gateway.config import GatewayConfig
    from gateway.core.limits import Admission
    from gateway.http_api import HttpApi
    from gateway.hub import Hub

    hub = Hub(GatewayConfig(redis_url="redis://127.0.0.1:1/0"))
    api = HttpApi(hub, Admission(10, 10))
    upgrade = Request("/ws", Headers([("Upgrade", "websocket"), ("Connection", "Upgrade")]))

    class Open:
        def is_closing(self) -> bool:
            return False

    class Peer:  # hashable, like a connection (admission keys on it), and still open
        def __init__(self, port: int) -> None:
            self.remote_address = ("127.0.0.1", port)
            self.transport = Open()

    peer = Peer(40000)
    assert api.admit(peer, upgrade, "") is None  # type: ignore[arg-type]  # admitted while on time
    hub.overload.observe(2.0, now=1.0)  # a loop two seconds late
    response = api.admit(Peer(40001), upgrade, "")  # type: ignore[arg-type]
    assert response is not None and response.status_code == 503
    assert orjson.loads(response.body)["code"] == "overloaded"
    assert 1 <= int(response.headers["Retry-After"]) <= 5
    assert api.admission.total == 1 and hub.counters["refused_overloaded"] == 1
