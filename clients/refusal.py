"""Handshakes a gateway refuses for load (HTTP 503, 429) and how long it asks us to stay away.

An overloaded gateway answers the WebSocket handshake with 503 (this process is full or
shedding load) or 429 (too many connections from this address), usually with
``Retry-After``. Reconnecting at once is exactly what keeps it overloaded, so the client
treats these apart from other failures: ``Retry-After`` is the floor of the next delay,
jitter spreads the clients above it (see :meth:`clients.backoff.Backoff.after_refusal`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from websockets.exceptions import InvalidStatus

OVERLOAD_STATUSES = frozenset({429, 503})
# A Retry-After above this is treated as this: a broken or hostile header must not park a
# client for days. Five minutes is longer than any overload a gateway should report.
MAX_RETRY_AFTER = 300.0


@dataclass(frozen=True, slots=True)
class HandshakeRefusal:
    """A handshake refused for load: the HTTP status and ``Retry-After`` in seconds, if given."""

    status: int
    retry_after: float | None


def handshake_refusal(exc: BaseException) -> HandshakeRefusal | None:
    """The refusal ``exc`` reports if a gateway refused the handshake for load, else None."""
    if not isinstance(exc, InvalidStatus):
        return None
    response = exc.response
    if response.status_code not in OVERLOAD_STATUSES:
        return None
    values = response.headers.get_all("Retry-After")  # get() raises on a duplicated header
    return HandshakeRefusal(response.status_code, parse_retry_after(values[0] if values else None))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from ``Retry-After`` (delay-seconds, fractions accepted, or an HTTP-date), capped.

    None when the header is missing or unreadable: the caller falls back to its backoff.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = _seconds_until(text, now)
        if seconds is None:
            return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _seconds_until(http_date: str, now: datetime | None) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT; the parser leaves "-0000" naive
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
