"""Reading a refused handshake: which statuses mean load, Retry-After, and the delay built on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from clients import Backoff
from clients.refusal import MAX_RETRY_AFTER, handshake_refusal, parse_retry_after


def refused(status: int, *headers: tuple[str, str]) -> InvalidStatus:
    return InvalidStatus(Response(status, "refused", Headers(list(headers)), b""))


def test_retry_after_is_seconds_or_an_http_date_and_is_capped() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after(" 0.5 ", now) == 0.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now) == 7.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=7), usegmt=True), now) == 0.0
    assert parse_retry_after("10000000", now) == MAX_RETRY_AFTER  # a broken header cannot park us for days
    for bad in (None, "", "soon", "-1", "nan", "inf", "1e999"):
        assert parse_retry_after(bad, now) is None, bad


def test_only_503_and_429_are_refusals_for_load() -> None:
    busy = handshake_refusal(refused(503, ("Retry-After", "2")))
    assert busy is not None and busy.status == 503 and busy.retry_after == 2.0
    limited = handshake_refusal(refused(429))
    assert limited is not None and limited.status == 429 and limited.retry_after is None
    twice = handshake_refusal(refused(503, ("Retry-After", "2"), ("Retry-After", "9")))
    assert twice is not None and twice.retry_after == 2.0  # a duplicated header does not raise
    assert handshake_refusal(refused(401)) is None  # a configuration error, not load
    assert handshake_refusal(OSError("connection refused")) is None


def test_refusal_delay_keeps_retry_after_as_a_floor_and_spreads_above_it() -> None:
    backoff = Backoff(initial=0.25, maximum=10, jitter=0.5)
    assert backoff.after_refusal(0, 4.0, lambda: 0.0) == 4.0
    assert backoff.after_refusal(0, 4.0, lambda: 0.999) == pytest.approx(5.998)
    assert backoff.after_refusal(0, None, lambda: 0.0) == 0.25  # no header: the backoff's ceiling
    assert backoff.after_refusal(6, 1.0, lambda: 0.0) == 10.0  # repeated refusals grow to the cap
    assert backoff.after_refusal(6, 60.0, lambda: 0.5) == 75.0  # a longer Retry-After wins over the cap
    spread = {backoff.after_refusal(0, 1.0, lambda x=x: x / 10) for x in range(10)}
    assert len(spread) == 10 and min(spread) == 1.0 and max(spread) < 1.5
