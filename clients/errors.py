"""Errors a program using :class:`clients.BookClient` may have to handle.

ClientError
 ├── ClientConnectError   the first connection failed (wrong URL, gateway down, handshake refused)
 ├── NotConnectedError    a request needs a live connection and there is none right now
 └── ClientClosedError    the client was closed while the caller was waiting on it

Integrity problems (gaps, checksum mismatches) are never raised to the caller: the client
resyncs by itself and counts them in :class:`clients.ClientStats`.
"""

from __future__ import annotations


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
