"""One load-generator connection: websockets' sans-I/O client protocol on a bare asyncio transport.

Why not ``websockets.asyncio.client`` or :class:`clients.BookClient`: under load the cost
per frame is what limits a generator process, and driving the protocol object directly
from ``data_received`` skips a future, a queue and a task switch per frame (measured ~30 %
more frames/s per process). websockets still does all of the protocol: the handshake,
framing, pings (answered automatically), the closing handshake and size limits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import WebSocketURI

from clients.load.checker import StreamChecker

log = logging.getLogger(__name__)

MAX_FRAME = 16 * 2**20  # an array frame of many pairs' snapshots can be large
_TEXT, _CONT = Opcode.TEXT, Opcode.CONT


class LoadConnection(asyncio.Protocol):
    """Opens, subscribes, checks every frame with its :class:`StreamChecker`, closes on request.

    ``opened`` resolves when the handshake succeeded and the subscription went out (or fails
    with the reason); ``closed`` resolves when the TCP connection is gone.
    """

    def __init__(
        self, uri: WebSocketURI, checker: StreamChecker, clock: Callable[[], int] = time.time_ns
    ) -> None:
        loop = asyncio.get_running_loop()
        self.checker = checker
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.closing = False  # True once we asked to close: the loss is not a disconnect
        self._clock = clock
        self._protocol = ClientProtocol(uri, max_size=MAX_FRAME)
        self._transport: asyncio.Transport | None = None
        self._fragments: list[bytes] = []
        self._close_timer = False

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        protocol = self._protocol
        protocol.send_request(protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        self._protocol.receive_data(data)
        self._events()

    def eof_received(self) -> bool | None:
        self._protocol.receive_eof()
        self._events()  # a refusal without Content-Length ends at EOF: its response is only complete now
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(str(exc) if exc else "closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    # --- control ---------------------------------------------------------------------

    def close(self) -> None:
        """Start the closing handshake (1000); the transport closes when the server answers."""
        self.closing = True
        if self._transport is None or self._transport.is_closing():
            return
        if self._protocol.state is State.OPEN:
            self._protocol.send_close(1000)
            self._flush()
        else:
            self._transport.close()

    def abort(self) -> None:
        """Drop the TCP connection at once (when a clean close takes too long)."""
        self.closing = True
        if self._transport is not None:
            self._transport.abort()

    # --- internals -------------------------------------------------------------------

    def _events(self) -> None:
        protocol = self._protocol
        now = self._clock()
        checker = self.checker
        for event in protocol.events_received():
            if type(event) is Frame:
                if event.opcode is _TEXT and event.fin:
                    checker.on_frame(event.data, now)
                elif event.opcode is _TEXT or event.opcode is _CONT:
                    self._fragment(event, now)
            elif isinstance(event, Response):
                self._handshake_done(now)
        if protocol.state is State.OPEN:
            for op in checker.take_ops():
                protocol.send_text(op)
        self._flush()

    def _handshake_done(self, now_ns: int) -> None:
        protocol = self._protocol
        if protocol.state is State.OPEN:
            for op in self.checker.subscribe_ops(now_ns):
                protocol.send_text(op)
            if not self.opened.done():
                self.opened.set_result(None)
            return
        exc = protocol.handshake_exc or InvalidHandshake("handshake failed")
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self._transport is not None:
            self._transport.close()

    def _fragment(self, frame: Frame, now_ns: int) -> None:
        """A message split over several frames: join the text before checking it."""
        self._fragments.append(frame.data)
        if frame.fin:
            data, self._fragments = b"".join(self._fragments), []
            self.checker.on_frame(data, now_ns)

    def _flush(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        for data in self._protocol.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()  # the protocol's signal that we are done writing
        if self._protocol.close_expected() and not self._close_timer:
            self._close_timer = True  # the server should close the TCP connection first; if not, we do
            asyncio.get_running_loop().call_later(2.0, transport.close)


async def open_connection(
    uri: WebSocketURI, checker: StreamChecker, timeout: float, source: str | None = None
) -> LoadConnection:
    """Connect, handshake and subscribe within ``timeout`` seconds.

    Raises OSError, TimeoutError or InvalidHandshake; the caller counts it and retries later.
    """
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        _, connection = await loop.create_connection(
            lambda: LoadConnection(uri, checker),
            uri.host,
            uri.port,
            ssl=True if uri.secure else None,
            local_addr=None if source is None else (source, 0),
        )
        try:
            await connection.opened
        except BaseException:
            connection.abort()
            raise
    return connection
