"""Encoding and decoding of protocol v1 frames. One function per direction and kind.

Server messages are encoded once (md_service encodes each delta, the gateway forwards
those bytes unchanged). A frame holds one message object or a JSON array of them.
Decoding client ops raises :class:`ProtocolError` with the wire error code to send back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from mdcore.errors import DecodeError, ProtocolError
from mdcore.messages import (
    Ack,
    ClientOp,
    Delta,
    ErrorMessage,
    Ping,
    Pong,
    Resync,
    ServerMessage,
    Snapshot,
    StreamPosition,
    Subscribe,
    UnknownMessage,
    Unsubscribe,
)

MAX_PAIRS_PER_REQUEST = 1024
MAX_ID_DEPTH = 32  # lists and objects inside a request's `id`; the answer echoes it

# --- server -> client: encode ------------------------------------------------------


def encode_snapshot(snap: Snapshot) -> bytes:
    return orjson.dumps(
        {
            "type": "snapshot",
            "pair": snap.pair,
            "epoch": snap.epoch,
            "seq": snap.seq,
            "ts": snap.ts,
            "bids": snap.bids,
            "asks": snap.asks,
            "checksum": snap.checksum,
        }
    )


def encode_delta(delta: Delta) -> bytes:
    return orjson.dumps(
        {
            "type": "delta",
            "pair": delta.pair,
            "epoch": delta.epoch,
            "seq": delta.seq,
            "ts": delta.ts,
            "xts": delta.xts,
            "bids": delta.bids,
            "asks": delta.asks,
            "checksum": delta.checksum,
        }
    )


def encode_ack(ack: Ack) -> bytes:
    body: dict[str, Any] = {"type": ack.type, "pairs": list(ack.pairs), "id": ack.id}
    if ack.recovered is not None:
        body["recovered"] = ack.recovered
    return orjson.dumps(body)


def encode_pong(pong: Pong) -> bytes:
    return orjson.dumps({"type": "pong", "id": pong.id})


def encode_error(code: str, message: str, request_id: Any = None) -> bytes:
    return orjson.dumps({"type": "error", "code": code, "message": message, "id": request_id})


def pack_frame(encoded_messages: Sequence[bytes]) -> bytes:
    """Join already-encoded messages into one array frame without re-encoding them."""
    if len(encoded_messages) == 1:
        return encoded_messages[0]
    return b"[" + b",".join(encoded_messages) + b"]"


# --- server -> client: decode ------------------------------------------------------


def _levels(obj: dict[str, Any], key: str) -> list[list[str]]:
    levels = obj[key]
    if type(levels) is not list:
        raise ValueError(f"{key} must be a list")
    return levels


def message_from_object(obj: dict[str, Any]) -> ServerMessage:
    """A decoded JSON object -> typed message. Unknown types are kept, not rejected."""
    kind = obj.get("type")
    if kind == "delta":
        return Delta(
            obj["pair"], obj["epoch"], obj["seq"], obj["ts"], obj["xts"],
            _levels(obj, "bids"), _levels(obj, "asks"), obj["checksum"],
        )  # fmt: skip
    if kind == "snapshot":
        return Snapshot(
            obj["pair"], obj["epoch"], obj["seq"], obj["ts"],
            _levels(obj, "bids"), _levels(obj, "asks"), obj["checksum"],
        )  # fmt: skip
    if kind in ("subscribed", "unsubscribed"):
        return Ack(kind, tuple(obj.get("pairs", ())), obj.get("id"), obj.get("recovered"))
    if kind == "pong":
        return Pong(obj.get("id"))
    if kind == "error":
        return ErrorMessage(obj.get("code", ""), obj.get("message", ""), obj.get("id"))
    return UnknownMessage(obj)


_MALFORMED = (ValueError, KeyError, TypeError, AttributeError)  # orjson's JSONDecodeError is a ValueError


def decode_server_frame(data: bytes | str) -> list[ServerMessage]:
    """One frame -> its messages in order (a frame is an object or an array of objects).

    Raises :class:`DecodeError` for anything else (not JSON, not objects, a known type with
    fields missing or of the wrong kind)."""
    try:
        obj = orjson.loads(data)
        items = obj if type(obj) is list else [obj]
        return [message_from_object(item) for item in items]
    except _MALFORMED as exc:
        raise DecodeError(f"not a server frame: {type(exc).__name__}: {exc}") from None


def decode_delta(data: bytes | str) -> Delta:
    """Decode a single delta (the bytes md_service publishes); :class:`DecodeError` if it is not one."""
    try:
        message = message_from_object(orjson.loads(data))
    except _MALFORMED as exc:
        raise DecodeError(f"not a delta: {type(exc).__name__}: {exc}") from None
    if not isinstance(message, Delta):
        raise DecodeError("not a delta message")
    return message


def decode_snapshot(data: bytes | str) -> Snapshot:
    try:
        message = message_from_object(orjson.loads(data))
    except _MALFORMED as exc:
        raise DecodeError(f"not a snapshot: {type(exc).__name__}: {exc}") from None
    if not isinstance(message, Snapshot):
        raise DecodeError("not a snapshot message")
    return message


# --- client -> server --------------------------------------------------------------


def encode_client_op(op: ClientOp) -> str:
    """A client op as the JSON text a client sends.

    An ``id`` of None is left out rather than sent as ``null``: ``id`` is optional and the
    gateway reads a missing one as None, so the frame is shorter and decodes to the same op.
    """
    if isinstance(op, Subscribe):
        body: dict[str, Any] = {"op": "subscribe", "pairs": list(op.pairs)}
    elif isinstance(op, Unsubscribe):
        body = {"op": "unsubscribe", "pairs": list(op.pairs)}
    elif isinstance(op, Resync):
        body = {"op": "resync", "pair": op.pair}
    else:
        body = {"op": "ping"}
    if op.id is not None:
        body["id"] = op.id
    if isinstance(op, Subscribe) and op.since:
        body["since"] = {p: {"epoch": s.epoch, "seq": s.seq} for p, s in op.since.items()}
    return orjson.dumps(body).decode()


def _pairs(obj: dict[str, Any], request_id: Any) -> tuple[str, ...]:
    pairs = obj.get("pairs")
    if type(pairs) is not list or not pairs or not all(type(p) is str for p in pairs):
        raise ProtocolError("bad_request", "'pairs' must be a non-empty list of strings", request_id)
    if len(pairs) > MAX_PAIRS_PER_REQUEST:
        raise ProtocolError("bad_request", f"at most {MAX_PAIRS_PER_REQUEST} pairs per request", request_id)
    return tuple(dict.fromkeys(pairs))  # drop repeats, keep order


def _since(obj: dict[str, Any], request_id: Any) -> dict[str, StreamPosition]:
    raw = obj.get("since")
    if raw is None:
        return {}
    problem = '\'since\' must map pairs to {"epoch": <string>, "seq": <integer >= 0>}'
    if type(raw) is not dict:
        raise ProtocolError("bad_request", problem, request_id)
    since: dict[str, StreamPosition] = {}
    for pair, pos in raw.items():
        if type(pos) is not dict:
            raise ProtocolError("bad_request", problem, request_id)
        epoch, seq = pos.get("epoch"), pos.get("seq")
        if type(epoch) is not str or type(seq) is not int or seq < 0:
            raise ProtocolError("bad_request", problem, request_id)
        since[pair] = StreamPosition(epoch, seq)
    return since


def _nesting_at_most(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects at most ``limit`` deep (a scalar is 0 deep)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is list or kind is dict:
            if depth >= limit:
                return False
            stack.extend((child, depth + 1) for child in (item.values() if kind is dict else item))
    return True


def decode_client_op(data: bytes | str) -> ClientOp:
    """Parse one client frame; raises :class:`ProtocolError` carrying the code to answer with.

    Nothing else escapes, whatever the frame holds: a client's input must always get an
    ``error`` answer, never an exception that ends its connection.
    """
    try:
        return _decode_client_op(data)
    except ProtocolError:
        raise
    except Exception as exc:  # a shape the checks below did not foresee: still the client's fault
        raise ProtocolError("bad_request", f"unreadable request ({type(exc).__name__})") from None


def _decode_client_op(data: bytes | str) -> ClientOp:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ProtocolError("bad_json", "the frame is not valid JSON") from None
    if type(obj) is not dict:
        raise ProtocolError("bad_request", "a request must be a JSON object")
    request_id = obj.get("id")
    if not _nesting_at_most(request_id, MAX_ID_DEPTH):
        # echoing it would fail to encode (orjson stops at 255 levels): answer without it
        raise ProtocolError("bad_request", f"'id' may nest at most {MAX_ID_DEPTH} levels deep")
    op = obj.get("op")
    if op == "subscribe":
        return Subscribe(_pairs(obj, request_id), request_id, _since(obj, request_id))
    if op == "unsubscribe":
        return Unsubscribe(_pairs(obj, request_id), request_id)
    if op == "resync":
        pair = obj.get("pair")
        if type(pair) is not str:
            raise ProtocolError("bad_request", "'pair' must be a string", request_id)
        return Resync(pair, request_id)
    if op == "ping":
        return Ping(request_id)
    if type(op) is not str:
        raise ProtocolError("bad_request", "'op' must be a string", request_id)
    raise ProtocolError("unknown_op", f"unknown op {op[:40]!r}", request_id)
