"""The WebSocket conversation with one client: read ops, answer, keep the hub in step."""

from __future__ import annotations

import logging

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gateway.hub import Hub
from gateway.session import ClientSession
from mdcore.codec import decode_client_op, encode_ack, encode_error, encode_pong
from mdcore.errors import ProtocolError
from mdcore.messages import Ack, Ping, Pong, Resync, Subscribe, Unsubscribe

log = logging.getLogger(__name__)


async def serve_client(hub: Hub, conn: ServerConnection) -> None:
    session = ClientSession(conn, hub.cfg)
    hub.sessions.add(session)
    try:
        async for frame in conn:
            if isinstance(frame, bytes):
                hub.counters["errors_bad_request"] += 1
                session.send(encode_error("bad_request", "binary frames are not accepted; send JSON text"))
                continue
            try:
                await _handle(hub, session, frame)
            except ProtocolError as exc:
                hub.counters[f"errors_{exc.code}"] += 1
                session.send(encode_error(exc.code, exc.message, exc.request_id))
    except ConnectionClosed:
        pass
    finally:
        hub.sessions.discard(session)
        hub.unsubscribe(session, set(session.pairs))


async def _handle(hub: Hub, session: ClientSession, frame: str) -> None:
    op = decode_client_op(frame)
    if isinstance(op, Subscribe):
        offered = await hub.offered_pairs()
        unknown = [p for p in op.pairs if p not in offered]
        if unknown:
            raise ProtocolError("unknown_pair", f"not offered here: {', '.join(unknown[:10])}", op.id)
        session.send(encode_ack(Ack("subscribed", op.pairs, op.id)))
        await hub.subscribe(session, op.pairs)
    elif isinstance(op, Unsubscribe):
        hub.unsubscribe(session, op.pairs)
        session.send(encode_ack(Ack("unsubscribed", op.pairs, op.id)))
    elif isinstance(op, Resync):
        if op.pair not in session.pairs:
            raise ProtocolError("bad_request", f"not subscribed to {op.pair!r}", op.id)
        hub.counters["resyncs"] += 1
        hub.send_snapshot(session, op.pair)
    elif isinstance(op, Ping):
        session.send(encode_pong(Pong(op.id)))
