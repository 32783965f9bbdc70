"""Which gateway a :class:`~clients.book_client.BookClient` tries next, when, and one attempt to it.

Why apart from the client: this is the whole reconnect *policy* (rotate through the URLs on
a failed attempt or a 1001 close, capped jittered backoff, never ask a gateway that refused
us for load (503/429) again before its ``Retry-After``); the client's connection loop only
decides *that* it must connect again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidURI, WebSocketException
from websockets.uri import parse_uri

from clients.config import ClientOptions
from clients.errors import ClientConnectError
from clients.refusal import HandshakeRefusal, handshake_refusal
from clients.stats import ClientStats

log = logging.getLogger(__name__)


class GatewayDialer:
    """The gateway URLs in turn, with per-URL "not before" times; counts attempts in ``stats``."""

    def __init__(
        self, urls: Sequence[str], options: ClientOptions, stats: ClientStats, rand: Callable[[], float]
    ) -> None:
        if not urls:
            raise ValueError("BookClient needs at least one URL")
        for candidate in urls:
            try:
                parse_uri(candidate)
            except InvalidURI:
                raise ValueError(f"not a ws:// or wss:// URL: {candidate!r}") from None
        self._urls = list(urls)
        self._index = 0
        self._options = options
        self._stats = stats
        self._rand = rand
        self._not_before = [0.0] * len(urls)  # per URL: time.monotonic() before which not to connect
        self.last_refusal: HandshakeRefusal | None = None  # of the last attempt, until one connects

    @property
    def url(self) -> str:
        """The URL in use (or to be tried next)."""
        return self._urls[self._index]

    def delay(self, attempt: int, back_off: bool) -> float:
        """Seconds to wait before the next attempt (``back_off`` False: none but a refusal's)."""
        delay = self._options.backoff.delay(attempt, self._rand) if back_off else 0.0
        # A gateway that refused us for load is not asked again before it said.
        return max(delay, self._not_before[self._index] - time.monotonic())

    async def open(self, pair_count: int) -> ClientConnection:
        """One connection attempt to the current URL; :class:`ClientConnectError` if it fails."""
        url, opts = self.url, self._options
        try:
            ws = await connect(
                url,
                open_timeout=opts.open_timeout,
                close_timeout=opts.close_timeout,
                ping_interval=opts.ping_interval,
                ping_timeout=opts.ping_timeout,
                max_size=opts.max_frame_size,
                compression=None,  # small frames; deflate would cost the gateway CPU per client
                proxy=None,  # market data goes straight to the gateway
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ClientConnectError(url, exc) from exc
        self.last_refusal = None
        self._stats.connects += 1
        if self._stats.connects > 1:
            self._stats.reconnects += 1
        log.info("connected to %s (%d pairs)", url, pair_count)
        return ws

    def failed(self, exc: ClientConnectError, attempt: int, retrying: bool = True) -> bool:
        """Count and log a failed attempt and move to the next URL; True if refused for load.

        A refusal for load (503/429) sets when that gateway may be tried again: its
        ``Retry-After`` (or the backoff's ceiling) as a floor, jitter above it.
        """
        refusal = handshake_refusal(exc.cause)
        if refusal is None:
            self._stats.connect_failures += 1
            if retrying:
                log.warning("%s; retrying (attempt %d)", exc, attempt + 1)
        else:
            self._stats.handshake_refusals += 1
            self.last_refusal = refusal
            delay = self._options.backoff.after_refusal(attempt, refusal.retry_after, self._rand)
            self._not_before[self._index] = time.monotonic() + delay
            log.warning(
                "%s is busy (HTTP %d, Retry-After %s); trying it again in %.1f s",
                exc.url, refusal.status, refusal.retry_after, delay,
            )  # fmt: skip
        self.advance()
        return refusal is not None

    def advance(self) -> None:
        """Move to the next URL (after a failed attempt, or a gateway going away)."""
        self._index = (self._index + 1) % len(self._urls)
