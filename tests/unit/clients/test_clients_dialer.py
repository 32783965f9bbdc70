"""GatewayDialer: which URL next, how long to wait, one attempt; refusals for load kept per URL.

The reconnect loop that calls it is BookClient's (test_clients_reconnect.py,
test_clients_admission.py); here the policy alone, on a clock the test moves.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from clients import Backoff, ClientConnectError, ClientStats
from clients import dialer as dialer_module
from clients.dialer import GatewayDialer
from clients.refusal import HandshakeRefusal
from tests.unit.clients.scripted_server import fast_options

A, B, C = "ws://a.test/ws", "ws://b.test/ws", "ws://c.test/ws"
BACKOFF = Backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.5)


class Clock:
    """time.monotonic() that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(dialer_module, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


def make(urls=(A, B, C), rand=lambda: 0.5, **options) -> tuple[GatewayDialer, ClientStats]:
    stats = ClientStats()
    return GatewayDialer(list(urls), fast_options(backoff=BACKOFF, **options), stats, rand), stats


def refused(url: str, status: int, retry_after: str | None = None) -> ClientConnectError:
    headers = Headers([("Retry-After", retry_after)] if retry_after is not None else [])
    return ClientConnectError(url, InvalidStatus(Response(status, "busy", headers, b"")))


def test_needs_at_least_one_url_and_only_websocket_ones() -> None:
    with pytest.raises(ValueError, match="at least one URL"):
        make(urls=())
    with pytest.raises(ValueError, match=r"not a ws:// or wss:// URL: 'http://a.test/'"):
        make(urls=(A, "http://a.test/"))


def test_advance_rotates_through_the_urls_and_wraps() -> None:
    dialer, _ = make()
    seen = [dialer.url]
    for _ in range(3):
        dialer.advance()
        seen.append(dialer.url)
    assert seen == [A, B, C, A]


def test_delay_is_the_backoff_or_none(clock) -> None:
    dialer, _ = make(rand=lambda: 0.25)
    for attempt in range(6):
        assert dialer.delay(attempt, back_off=True) == BACKOFF.delay(attempt, lambda: 0.25)
        assert dialer.delay(attempt, back_off=False) == 0.0


def test_a_failed_attempt_is_counted_and_moves_to_the_next_url(clock, caplog) -> None:
    dialer, stats = make()
    assert dialer.failed(ClientConnectError(A, OSError("connection refused")), attempt=2) is False
    assert stats.connect_failures == 1 and stats.handshake_refusals == 0
    assert dialer.url == B and dialer.last_refusal is None
    assert "retrying (attempt 3)" in caplog.text
    assert dialer.delay(0, back_off=False) == 0.0  # an ordinary failure sets no floor


def test_a_failed_last_attempt_is_not_logged_as_retrying(clock, caplog) -> None:
    dialer, stats = make()
    dialer.failed(ClientConnectError(A, OSError("connection refused")), attempt=0, retrying=False)
    assert stats.connect_failures == 1
    assert "retrying" not in caplog.text


@pytest.mark.parametrize("status", [503, 429])
def test_a_refusal_for_load_keeps_that_gateway_away_until_retry_after(clock, status) -> None:
    dialer, stats = make(urls=(A, B))
    assert dialer.failed(refused(A, status, "7"), attempt=0) is True
    assert stats.handshake_refusals == 1 and stats.connect_failures == 0
    assert dialer.last_refusal == HandshakeRefusal(status, 7.0)
    floor = BACKOFF.after_refusal(0, 7.0, lambda: 0.5)  # 7 s, jitter above it
    assert floor > 7.0

    assert dialer.url == B
    assert dialer.delay(0, back_off=False) == 0.0  # the floor belongs to the busy gateway only
    dialer.advance()
    assert dialer.url == A
    assert dialer.delay(0, back_off=False) == pytest.approx(floor)
    assert dialer.delay(0, back_off=True) == pytest.approx(floor)  # larger than the 1 s backoff
    clock.now += floor - 2.0
    assert dialer.delay(0, back_off=False) == pytest.approx(2.0)
    clock.now += 2.0
    assert dialer.delay(0, back_off=False) == 0.0
    assert dialer.delay(1, back_off=True) == BACKOFF.delay(1, lambda: 0.5)


def test_a_refusal_without_retry_after_waits_the_backoffs_ceiling(clock) -> None:
    dialer, _ = make(urls=(A,), rand=lambda: 0.0)
    assert dialer.failed(refused(A, 503), attempt=3) is True
    assert dialer.last_refusal == HandshakeRefusal(503, None)
    assert dialer.delay(0, back_off=False) == pytest.approx(BACKOFF.ceiling(3))


def test_other_statuses_are_ordinary_failures(clock) -> None:
    dialer, stats = make(urls=(A,))
    assert dialer.failed(refused(A, 401, "60"), attempt=0) is False
    assert stats.connect_failures == 1 and stats.handshake_refusals == 0
    assert dialer.last_refusal is None
    assert dialer.delay(0, back_off=False) == 0.0


async def test_open_counts_connects_and_reconnects_and_clears_the_refusal(server) -> None:
    dialer, stats = make(urls=(server.url,))
    dialer.failed(refused(server.url, 503, "0"), attempt=0)
    assert dialer.last_refusal is not None
    first = await dialer.open(pair_count=1)
    assert (stats.connects, stats.reconnects) == (1, 0)
    assert dialer.last_refusal is None
    second = await dialer.open(pair_count=1)
    assert (stats.connects, stats.reconnects) == (2, 1)
    await first.close()
    await second.close()
    assert server.handshakes[-1].status == 101


async def test_open_raises_client_connect_error_and_leaves_the_counting_to_failed() -> None:
    with socket.socket() as sock:  # bound, not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"
        dialer, stats = make(urls=(url,))
        with pytest.raises(ClientConnectError) as caught:
            await dialer.open(pair_count=1)
    assert caught.value.url == url and isinstance(caught.value.cause, OSError)
    assert stats.connects == 0 and stats.connect_failures == 0
