"""Errors a program using :class:`clients.BookClient` may have to handle.

ClientError
 ├── ClientConnectError        the first connection failed (wrong URL, gateway down, handshake refused)
 ├── NotConnectedError         a request needs a live connection and there is none right now
 ├── ClientClosedError         the client was closed while the caller was waiting on it
 └── SubscriptionRefusedError  the gateway answered a subscribe with an error (unknown_pair, ...)

Integrity problems (gaps, checksum mismatches) are never raised to the caller: the client
resyncs by itself and counts them in :class:`clients.ClientStats`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class ClientError(Exception):
    """Root of every error the client raises on purpose."""


class ClientConnectError(ClientError, ConnectionError):
    """Connecting to ``url`` failed; check the URL and that a gateway listens there."""

    def __init__(self, url: str, cause: BaseException) -> None:
        detail = str(cause) or type(cause).__name__
        super().__init__(f"cannot connect to {url}: {detail}")
        self.url = url
        self.cause = cause


class NotConnectedError(ClientError, ConnectionError):
    """No connection is open right now (the client is reconnecting); retry later."""


class ClientClosedError(ClientError):
    """The client is closed; nothing more will arrive. Open a new one to continue."""


@dataclass(frozen=True, slots=True)
class SubscriptionRefusal:
    """The gateway's error answer to subscribing a pair: ``code`` to act on, ``message`` for humans."""

    code: str  # unknown_pair, too_many_pairs, bad_request, or a code a newer gateway sends
    message: str


class SubscriptionRefusedError(ClientError):
    """The gateway refused to subscribe some pairs; they are not synced and are retried slowly.

    ``refusals`` maps each pair to its refusal; ``pairs`` and ``code`` (the first pair's)
    are the short form. Follow fewer pairs, another gateway, or ``unsubscribe`` them.
    """

    def __init__(self, refusals: Mapping[str, SubscriptionRefusal]) -> None:
        self.refusals = dict(refusals)
        self.pairs = tuple(self.refusals)
        first = next(iter(self.refusals.values()))
        self.code = first.code
        super().__init__(f"gateway refused {', '.join(self.pairs)}: {first.code}: {first.message}")
