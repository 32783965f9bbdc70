"""The WebSocket conversation with one client: read ops, answer, enforce the per-connection limits.

Inbound frames are small (``max_frame_bytes``; a bigger one closes the connection with 1009)
and rate-limited by a token bucket (an ``error`` frame ``rate_limited``, then close 1008).
Control frames (pings, pongs) draw from the same bucket: websockets answers every ping by
itself, so a ping flood would otherwise cost the loop a pong each, unlimited.
Every other bad input gets an ``error`` frame and the connection stays usable; an input
that trips a bug gets ``internal_error`` (logged), never a 1011.
"""

from __future__ import annotations

import asyncio
import logging
import time

from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

from gateway import subscriptions
from gateway.core.limits import TokenBucket
from gateway.hub import Hub
from gateway.session import ClientSession, GatewayConnection
from gateway.slow import SlowClients
from mdcore.codec import decode_client_op, encode_error, encode_pong
from mdcore.errors import ProtocolError
from mdcore.messages import Ping, Pong, Resync, Subscribe, Unsubscribe

log = logging.getLogger(__name__)

CLOSE_POLICY_VIOLATION = 1008
CONTROL_OPCODES = (Opcode.PING, Opcode.PONG)
BUG_LOG_EVERY_S = 10.0  # at most one traceback per this long: a client must not flood the log


class OpLimit:
    """One connection's op budget: data and control frames spend it; running out closes with 1008."""

    __slots__ = ("_bucket", "_hub", "_loop", "_session", "tripped")

    def __init__(self, hub: Hub, session: ClientSession, loop: asyncio.AbstractEventLoop) -> None:
        self._hub = hub
        self._session = session
        self._loop = loop
        self._bucket = TokenBucket(hub.cfg.op_rate, hub.cfg.op_burst, loop.time())
        self.tripped = False

    def allow(self) -> bool:
        """Spend one token; on the first refusal answer ``rate_limited`` and close (1008)."""
        if self.tripped:
            return False
        if self._bucket.take(self._loop.time()):
            return True
        self.tripped = True
        counters = self._hub.counters
        counters.count_error("rate_limited")
        counters["closed_rate_limited"] += 1
        cfg = self._hub.cfg
        rate = f"{cfg.op_rate:g}/s (bursts of {cfg.op_burst})"
        self._session.send(encode_error("rate_limited", f"more than {rate} requests; closing"))
        self._session.close(CLOSE_POLICY_VIOLATION, "rate limit exceeded")
        return False


class LimitedConnection(GatewayConnection):
    """A connection whose pings and pongs spend its :class:`OpLimit` (set by :func:`serve_client`)."""

    op_limit: OpLimit | None = None

    def process_event(self, event: Event) -> None:
        limit = self.op_limit
        if limit is not None and isinstance(event, Frame) and event.opcode in CONTROL_OPCODES:
            limit.allow()  # the pong went out already (websockets answers first); the next ones will not
        super().process_event(event)


async def serve_client(hub: Hub, slow: SlowClients, conn: GatewayConnection) -> None:
    session = ClientSession(conn)
    conn.session = session
    hub.open_session(session)
    counters = hub.counters
    limit = OpLimit(hub, session, asyncio.get_running_loop())
    if isinstance(conn, LimitedConnection):
        conn.op_limit = limit
    try:
        async for frame in conn:
            counters["ops_received"] += 1
            if not limit.allow():
                break
            if isinstance(frame, bytes):
                counters["binary_frames"] += 1
                counters.count_error("bad_request")
                session.send(encode_error("bad_request", "binary frames are not accepted; send JSON text"))
                continue
            await _answer(hub, session, frame)
    except ConnectionClosed:
        pass
    finally:
        if isinstance(conn, LimitedConnection):
            conn.op_limit = None
        slow.forget(session)
        hub.close_session(session)
        counters.count_close(_close_code(conn))


def _close_code(conn: GatewayConnection) -> int:
    """The code this side sent (its own, or the echo of the client's); 1006 if none went out."""
    protocol = conn.protocol
    if protocol.close_sent is not None:
        return protocol.close_sent.code
    if protocol.close_rcvd is not None:
        return protocol.close_rcvd.code
    return 1006


_bug_log = TokenBucket(1 / BUG_LOG_EVERY_S, 1, 0.0)


async def _answer(hub: Hub, session: ClientSession, frame: str) -> None:
    """Handle one op; whatever goes wrong, the client gets an ``error`` frame and keeps its connection."""
    try:
        await _handle(hub, session, frame)
    except ProtocolError as exc:
        hub.counters.count_error(exc.code)
        session.send(encode_error(exc.code, exc.message, exc.request_id))
    except ConnectionClosed:
        raise
    except Exception:  # a bug: say so, log it (rate-limited), keep serving this client and the rest
        hub.counters.count_error("internal_error")
        if _bug_log.take(time.monotonic()):
            log.exception("handling a client request failed (further failures logged every %gs)",
                          BUG_LOG_EVERY_S)  # fmt: skip
        session.send(encode_error("internal_error", "the gateway could not handle this request"))


async def _handle(hub: Hub, session: ClientSession, frame: str) -> None:
    op = decode_client_op(frame)
    if isinstance(op, Subscribe):
        await subscriptions.subscribe(hub, session, op)
    elif isinstance(op, Unsubscribe):
        subscriptions.unsubscribe(hub, session, op)
    elif isinstance(op, Resync):
        subscriptions.resync(hub, session, op)
    elif isinstance(op, Ping):
        hub.counters["pings"] += 1
        session.send(encode_pong(Pong(op.id)))
