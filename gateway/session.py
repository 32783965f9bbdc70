"""One client connection: what it follows, and how frames reach it without blocking anyone.

Every write is synchronous and goes straight to the connection's transport as a complete,
pre-built text frame (``gateway.core.wsframe``), so the order in which the hub writes is the order
the client receives, and nothing awaits a client. The transport's high-water mark (set by
the server) calls back when a client falls behind (:meth:`GatewayConnection.pause_writing`):
the client becomes *stale* and gets no deltas until it drains, then a fresh snapshot of every
pair that moved meanwhile (``gateway.slow``). A session's states (live, stale, closing) are
:class:`SessionState`; :class:`Subscriber` is what the rest of the gateway needs of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from websockets.asyncio.server import ServerConnection
from websockets.protocol import OPEN, State

from gateway.core.wsframe import text_frame
from mdcore.messages import StreamPosition

if TYPE_CHECKING:
    from gateway.fanout import Group


class ConnectionHooks(Protocol):
    """What the gateway wants to hear from every connection (see :class:`GatewayConnection`)."""

    send_buffer_bytes: int  # SO_SNDBUF for client sockets; 0 keeps the OS default

    def paused(self, session: ClientSession) -> None: ...
    def resumed(self, session: ClientSession) -> None: ...
    def lost(self, conn: GatewayConnection) -> None: ...


class GatewayConnection(ServerConnection):
    """``ServerConnection`` that reports flow-control changes and its end to the gateway.

    The server makes a subclass with ``hooks`` set (``serve(create_connection=...)``).
    """

    hooks: ConnectionHooks | None = None
    session: ClientSession | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        hooks = self.hooks
        if hooks is not None and hooks.send_buffer_bytes:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, hooks.send_buffer_bytes)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.session is not None and self.hooks is not None:
            self.hooks.paused(self.session)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.session is not None and self.hooks is not None:
            self.hooks.resumed(self.session)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.hooks is not None:
            self.hooks.lost(self)


class SessionState(Enum):
    """A session's states. It starts live; only the methods of :class:`SessionLifecycle` move it."""

    LIVE = "live"  # keeps up: in the fan-out (once it follows pairs)
    STALE = "stale"  # over the high-water mark: out of the fan-out, healed by snapshots when it drains
    CLOSING = "closing"  # being closed, or closed: nothing more is written, nothing heals it


class SessionLifecycle:
    """A session's state and the rule for changing it (``gateway.slow`` and the hub call these).

    Live -> stale (:meth:`go_stale`, with per pair the position its deltas had reached, or
    None where it owes a snapshot) -> live (:meth:`come_back`); any -> closing
    (:meth:`closing`), for good. The tests' fake sessions inherit it too, so they cannot
    drift from the rule.
    """

    __slots__ = ("lag_marks", "lag_since", "state")
    state: SessionState
    lag_since: float
    lag_marks: dict[str, StreamPosition | None]

    @property
    def lagging(self) -> bool:
        """Stale: out of the fan-out until it drains."""
        return self.state is SessionState.STALE

    def go_stale(self, marks: dict[str, StreamPosition | None], now: float) -> bool:
        """Live -> stale: ``marks`` say where each pair's deltas had reached (None: owes a snapshot).
        False (and no change) unless it was live."""
        if self.state is not SessionState.LIVE:
            return False
        self.state, self.lag_since, self.lag_marks = SessionState.STALE, now, marks
        return True

    def come_back(self) -> dict[str, StreamPosition | None]:
        """Stale -> live; returns the marks, which say what it must be sent to heal."""
        marks, self.lag_marks = self.lag_marks, {}
        if self.state is SessionState.STALE:
            self.state = SessionState.LIVE
        return marks

    def owe_snapshot(self, pair: str) -> None:
        """(stale) the pair gets a snapshot when it comes back, whatever its mark was."""
        self.lag_marks[pair] = None

    def forget_pair(self, pair: str) -> None:
        self.lag_marks.pop(pair, None)

    def closing(self) -> None:
        """Any -> closing, for good."""
        self.state = SessionState.CLOSING
        self.lag_marks = {}


class FrameSink(Protocol):
    """The part of a transport the gateway writes frames to (``asyncio.Transport`` has it)."""

    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...


class HasState(Protocol):
    @property
    def state(self) -> State: ...  # websockets' protocol state: frames go out only while OPEN


class Subscriber(Protocol):
    """What the hub, the fan-out and ``gateway.slow`` need of a session: :class:`ClientSession`,
    and the tests' fakes (``tests/unit/gateway/test_gateway_session_protocol.py`` holds both to it)."""

    pairs: set[str]
    group: Group | None
    floors: dict[str, int] | None
    peer: str
    state: SessionState
    lag_since: float
    lag_marks: dict[str, StreamPosition | None]

    @property
    def transport(self) -> FrameSink: ...
    @property
    def protocol(self) -> HasState: ...
    @property
    def lagging(self) -> bool: ...
    @property
    def open(self) -> bool: ...
    def send(self, payload: bytes) -> bool: ...
    def buffered_bytes(self) -> int: ...
    def close(self, code: int, reason: str, grace_s: float = 1.0) -> None: ...
    def go_stale(self, marks: dict[str, StreamPosition | None], now: float) -> bool: ...
    def come_back(self) -> dict[str, StreamPosition | None]: ...
    def owe_snapshot(self, pair: str) -> None: ...
    def forget_pair(self, pair: str) -> None: ...
    def closing(self) -> None: ...


class ClientSession(SessionLifecycle):
    """A connection's subscriptions, fan-out group and state (:class:`SessionLifecycle`)."""

    __slots__ = (
        "conn",
        "floors",
        "group",
        "pairs",
        "peer",
        "protocol",
        "transport",
    )

    def __init__(self, conn: ServerConnection) -> None:
        self.conn = conn
        self.protocol = conn.protocol
        self.transport: asyncio.Transport = conn.transport
        self.pairs: set[str] = set()
        self.group: Group | None = None  # its fan-out group while it receives deltas (gateway.fanout)
        # per pair, the seq of a snapshot or replay sent while deltas were pending (gateway.fanout)
        self.floors: dict[str, int] | None = None
        self.state = SessionState.LIVE
        self.lag_since = 0.0
        # while stale: per pair, the position its deltas had reached (None: owes a snapshot)
        self.lag_marks: dict[str, StreamPosition | None] = {}
        self.peer = str(conn.remote_address[0]) if conn.remote_address else "?"

    @property
    def open(self) -> bool:
        return self.state is not SessionState.CLOSING and self.protocol.state is OPEN

    def send(self, payload: bytes) -> bool:
        """Write one text frame (already-encoded UTF-8 JSON) now; False if the connection is not open."""
        if self.protocol.state is not OPEN:
            return False
        try:
            self.transport.write(text_frame(payload))
        except (RuntimeError, OSError):  # the transport closed under us; the handler cleans up
            return False
        return True

    def buffered_bytes(self) -> int:
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def close(self, code: int, reason: str, grace_s: float = 1.0) -> None:
        """Send a close frame now and drop the TCP connection ``grace_s`` later, whatever happens.

        Unlike ``ServerConnection.close()`` this never waits for the client to drain its
        backlog (that wait has no bound but the heartbeat): a stuck client sees the code only
        if it reads again within the grace period.
        """
        self.closing()
        conn = self.conn
        if self.protocol.state is OPEN:
            with contextlib.suppress(Exception):  # the transport may be gone already: aborting is the goal
                self.protocol.send_close(code, reason)
                conn.send_data()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            asyncio.get_running_loop().call_later(grace_s, transport.abort)
