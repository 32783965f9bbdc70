"""A lean Redis sharded Pub/Sub subscriber on one asyncio connection (one Redis or cluster node).

md_service publishes with ``SPUBLISH``, so the subscriber sends ``SSUBSCRIBE``: on a single
server it behaves as plain Pub/Sub; on a Redis Cluster a channel lives on the node that owns
its slot, and the server itself ends a subscription whose slot moved (a ``sunsubscribe`` it
pushes unasked), which the caller learns through ``on_dropped``. Channels of one
``SSUBSCRIBE`` must share a slot, so callers group them (one partition each).

Why not redis-py's PubSub: the gateway needs (1) every message that arrived in one read
handed over together, so a window's deltas for many pairs can be packed into one frame per
client, (2) its own liveness check (PING, and a deadline for *any* byte back), because a
half-open TCP connection otherwise looks like a quiet but healthy subscription, and (3) a
confirmation per channel, so history is read only after the subscription is in force.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable

from gateway.core.resp import RespError, RespParser, RespProtocolError, Status, encode_command

log = logging.getLogger(__name__)

MessageHandler = Callable[[bytes, bytes], None]  # (channel, data)
DropHandler = Callable[[bytes], None]  # (channel): the server ended this subscription unasked
_MESSAGE_KINDS = (b"smessage", b"message")


class PubSubClosedError(ConnectionError):
    """The subscriber connection is gone; the link reconnects."""


class SubscriberProtocol(asyncio.Protocol):
    """Parses replies; hands each ``message`` to ``on_message``; resolves confirmations in order."""

    def __init__(self, on_message: MessageHandler, on_dropped: DropHandler | None = None) -> None:
        self._on_message = on_message
        self._on_dropped = on_dropped
        self._parser = RespParser()
        self.transport: asyncio.Transport | None = None
        self.last_rx = time.monotonic()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # FIFO of (kind, channel or None, future): the replies we wait for, in request order
        self._waiting: deque[tuple[bytes, bytes | None, asyncio.Future[object]]] = deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        for _kind, _channel, fut in self._waiting:
            if not fut.done():
                fut.set_exception(PubSubClosedError("connection lost"))
        self._waiting.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        try:
            replies = self._parser.feed(data)
        except RespProtocolError as exc:
            log.error("redis sent bytes that are not RESP (%s); reconnecting", exc)
            self.abort()
            return
        on_message = self._on_message
        for reply in replies:
            if type(reply) is list and len(reply) == 3 and reply[0] in _MESSAGE_KINDS:
                on_message(reply[1], reply[2])  # type: ignore[arg-type]
            else:
                self._reply(reply)

    def _reply(self, reply: object) -> None:
        if type(reply) is list and reply and isinstance(reply[0], bytes):
            kind = reply[0].lower()
            channel = reply[1] if len(reply) > 1 and isinstance(reply[1], bytes) else None
        elif isinstance(reply, Status):
            kind, channel = reply.lower().encode(), None  # +OK (AUTH), +PONG (not subscribed)
        elif isinstance(reply, RespError):
            kind, channel = b"error", None
        else:
            return
        for i, (want, want_channel, fut) in enumerate(self._waiting):
            if kind == b"error" or (want == kind and (want_channel is None or want_channel == channel)):
                del self._waiting[i]
                if not fut.done():
                    if isinstance(reply, RespError):
                        fut.set_exception(reply)
                    else:
                        fut.set_result(reply)
                return
        if isinstance(reply, RespError):
            log.warning("redis error on the subscriber connection: %s", reply)
        elif kind == b"sunsubscribe" and channel is not None and self._on_dropped is not None:
            self._on_dropped(channel)  # nobody asked: the channel's slot moved to another node

    def command(
        self, args: list[str | bytes], expect: list[tuple[bytes, bytes | None]]
    ) -> list[asyncio.Future]:
        """Send one command; return a future per expected reply ``(kind, channel)``."""
        if self.transport is None or self.transport.is_closing():
            raise PubSubClosedError("not connected")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future] = []
        for kind, channel in expect:
            fut: asyncio.Future[object] = loop.create_future()
            self._waiting.append((kind, channel, fut))
            futures.append(fut)
        self.transport.write(encode_command(args))
        return futures

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Subscriber:
    """One subscriber connection: connect (and AUTH), SSUBSCRIBE/SUNSUBSCRIBE, PING."""

    def __init__(self, protocol: SubscriberProtocol) -> None:
        self.protocol = protocol

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        on_message: MessageHandler,
        *,
        on_dropped: DropHandler | None = None,
        username: str | None = None,
        password: str | None = None,
        use_ssl: bool = False,
        timeout: float = 5.0,
    ) -> Subscriber:
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if use_ssl else None
        async with asyncio.timeout(timeout):
            _transport, protocol = await loop.create_connection(
                lambda: SubscriberProtocol(on_message, on_dropped), host, port, ssl=context
            )
            sub = cls(protocol)
            if password:
                args: list[str | bytes] = ["AUTH", username, password] if username else ["AUTH", password]
                await sub.protocol.command(args, [(b"ok", None)])[0]
        return sub

    @property
    def last_rx(self) -> float:
        return self.protocol.last_rx

    @property
    def closed(self) -> asyncio.Future[None]:
        return self.protocol.closed

    async def subscribe(self, channels: list[bytes], timeout: float) -> None:
        """SSUBSCRIBE (channels of one slot) and wait for every confirmation, so that later
        reads see its messages."""
        if not channels:
            return
        futures = self.protocol.command(["SSUBSCRIBE", *channels], [(b"ssubscribe", c) for c in channels])
        async with asyncio.timeout(timeout):
            await asyncio.gather(*futures)

    def unsubscribe(self, channels: list[bytes]) -> None:
        """SUNSUBSCRIBE (channels of one slot) without waiting: a late message for a dropped
        channel is ignored anyway."""
        if channels:
            for fut in self.protocol.command(
                ["SUNSUBSCRIBE", *channels], [(b"sunsubscribe", c) for c in channels]
            ):
                fut.add_done_callback(_consume)

    def ping(self) -> None:
        """PING; the answer (any byte, really) refreshes :attr:`last_rx`."""
        for fut in self.protocol.command(["PING"], [(b"pong", None)]):
            fut.add_done_callback(_consume)

    def abort(self) -> None:
        self.protocol.abort()


def _consume(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieve it: a lost connection is handled by the link, not here
