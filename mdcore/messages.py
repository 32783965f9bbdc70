"""Wire protocol v1 messages as immutable values (see docs/protocol.md).

Levels are ``[price, qty]`` pairs of canonical decimal strings, best first. Server
messages are what the gateway sends; client ops are what a client may send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

WireLevels = Sequence[Sequence[str]]


class StreamPosition(NamedTuple):
    """Where a book stands in a pair's stream: a client's, a replica's, or what Redis holds.

    A named tuple, so md_service's ``(epoch, seq)`` bookkeeping and the protocol's positions
    are one type (the wire form is always written field by field, :mod:`mdcore.codec`).
    """

    epoch: str
    seq: int


# --- gateway -> client -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole book at ``seq``: deltas ``seq+1``, ``seq+2``, … follow it."""

    pair: str
    epoch: str
    seq: int
    ts: int
    bids: WireLevels
    asks: WireLevels
    checksum: int


@dataclass(frozen=True, slots=True)
class Delta:
    """One window's changes: absolute quantities, "0" deletes; ``checksum`` is of the book after it."""

    pair: str
    epoch: str
    seq: int
    ts: int  # window close, ns
    xts: int  # earliest exchange time in the window, ns
    bids: WireLevels
    asks: WireLevels
    checksum: int


@dataclass(frozen=True, slots=True)
class Ack:
    """Answer to subscribe/unsubscribe: ``type`` is "subscribed" or "unsubscribed"."""

    type: str
    pairs: tuple[str, ...]
    id: Any = None
    recovered: bool | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    id: Any = None


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    code: str
    message: str
    id: Any = None


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A message type this client version does not know; ignored for forward compatibility."""

    raw: dict[str, Any]


ServerMessage = Snapshot | Delta | Ack | Pong | ErrorMessage | UnknownMessage


# --- client -> gateway -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscribe:
    pairs: tuple[str, ...]
    id: Any = None
    since: dict[str, StreamPosition] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    pairs: tuple[str, ...]
    id: Any = None


@dataclass(frozen=True, slots=True)
class Resync:
    pair: str
    id: Any = None


@dataclass(frozen=True, slots=True)
class Ping:
    id: Any = None


ClientOp = Subscribe | Unsubscribe | Resync | Ping
