"""The WebSocket conversation with one client: read ops, answer, enforce the per-connection limits.

Inbound frames are small (``max_frame_bytes``; a bigger one closes the connection with 1009)
and rate-limited by a token bucket (an ``error`` frame ``rate_limited``, then close 1008).
Every other bad input gets an ``error`` frame and the connection stays usable.
"""

from __future__ import annotations

import asyncio
import logging

from websockets.exceptions import ConnectionClosed

from gateway import subscriptions
from gateway.hub import Hub
from gateway.limits import TokenBucket
from gateway.session import ClientSession, GatewayConnection
from gateway.slow import SlowClients
from mdcore.codec import decode_client_op, encode_error, encode_pong
from mdcore.errors import ProtocolError
from mdcore.messages import Ping, Pong, Resync, Subscribe, Unsubscribe

log = logging.getLogger(__name__)

CLOSE_POLICY_VIOLATION = 1008


async def serve_client(hub: Hub, slow: SlowClients, conn: GatewayConnection) -> None:
    session = ClientSession(conn)
    conn.session = session
    hub.open_session(session)
    counters = hub.counters
    loop = asyncio.get_running_loop()
    bucket = TokenBucket(hub.cfg.op_rate, hub.cfg.op_burst, loop.time())
    try:
        async for frame in conn:
            counters["ops_received"] += 1
            if not bucket.take(loop.time()):
                counters.count_error("rate_limited")
                counters["closed_rate_limited"] += 1
                rate = f"{hub.cfg.op_rate:g}/s (bursts of {hub.cfg.op_burst})"
                session.send(encode_error("rate_limited", f"more than {rate} requests; closing"))
                session.close(CLOSE_POLICY_VIOLATION, "rate limit exceeded")
                break
            if isinstance(frame, bytes):
                counters["binary_frames"] += 1
                counters.count_error("bad_request")
                session.send(encode_error("bad_request", "binary frames are not accepted; send JSON text"))
                continue
            try:
                await _handle(hub, session, frame)
            except ProtocolError as exc:
                counters.count_error(exc.code)
                session.send(encode_error(exc.code, exc.message, exc.request_id))
    except ConnectionClosed:
        pass
    finally:
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
