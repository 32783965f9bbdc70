"""Binance stream names and stream URLs, parsed against the symbols on offer.

Names (lower-case symbol, as Binance requires): ``<symbol>@depth`` and ``<symbol>@depth@1000ms``
(diff depth, 1000 ms), ``<symbol>@depth@100ms`` (diff depth, one event per bookcast window),
``<symbol>@depth<5|10|20>`` with an optional ``@100ms`` / ``@1000ms`` (partial book). The
``@1000ms`` spellings are what Binance's own Python connector sends for the default speed.

URLs (relative to the dialect's prefix): ``/ws`` (then SUBSCRIBE), ``/ws/<s1>/<s2>...``
(raw events), ``/stream`` and ``/stream?streams=<s1>/<s2>/...`` (combined:
``{"stream":..,"data":..}``). A name repeated in a URL counts once. A segment of digits
only names no stream: ccxt opens ``/ws/<n>`` (``n`` its own connection index) and then
subscribes, and Binance accepts that URL, so it opens an empty ``/ws`` connection here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from gateway.binance.symbols import SymbolTable

_NAME = re.compile(r"([a-z0-9]{1,20})@depth(5|10|20)?(?:@(100|1000)ms)?")
INVALID_STREAM = "Invalid request: invalid stream"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One subscribable stream. ``levels`` 0 is diff depth, else the partial book's depth."""

    name: str
    pair: str
    symbol: str
    levels: int
    speed_ms: int

    @property
    def feed(self) -> tuple[str, int, int]:
        """What is computed once per pair and shared by every stream name that asks for it."""
        return self.pair, self.levels, self.speed_ms


def parse_stream_name(name: object, table: SymbolTable) -> StreamSpec | None:
    """The stream a name denotes, or None if it is malformed or names a symbol not on offer."""
    if type(name) is not str:
        return None
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    info = table.by_stream(match[1])
    if info is None:
        return None
    levels = int(match[2]) if match[2] else 0
    speed = int(match[3]) if match[3] else 1000
    return StreamSpec(name, info.pair, info.symbol, levels, speed)


def _is_label(segment: str) -> bool:
    """A connection label, not a stream: what ccxt puts after ``/ws/`` (``0``, ``1``, ...)."""
    return segment.isascii() and segment.isdigit()


class StreamPathError(ValueError):
    """A stream URL the handshake refuses (HTTP 400 with a Binance-style body)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


@dataclass(frozen=True, slots=True)
class StreamTarget:
    combined: bool
    streams: tuple[StreamSpec, ...]


def parse_stream_target(path: str, query: str, table: SymbolTable, max_streams: int) -> StreamTarget | None:
    """``/ws...`` or ``/stream...`` (prefix already removed) -> what to open; None if neither.

    Raises :class:`StreamPathError` for an invalid or unknown stream, too many streams, or a
    time unit other than milliseconds.
    """
    if path in ("/ws", "/ws/"):
        combined, names = False, []
    elif path.startswith("/ws/"):
        combined, names = False, [n for n in path[4:].split("/") if n and not _is_label(n)]
    elif path in ("/stream", "/stream/"):
        combined, names = True, []
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == "streams":
                names.extend(n for n in value.split("/") if n)
    else:
        return None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "timeUnit" and value.upper() != "MILLISECOND":
            raise StreamPathError(-1194, "Invalid value for time unit; expected MILLISECOND.")
    specs: dict[str, StreamSpec] = {}
    for name in names:
        spec = parse_stream_name(name, table)
        if spec is None:
            raise StreamPathError(2, f"{INVALID_STREAM}: {name[:60]}")
        specs.setdefault(name, spec)
    if len(specs) > max_streams:
        raise StreamPathError(2, f"Invalid request: too many streams; at most {max_streams} per connection")
    return StreamTarget(combined, tuple(specs.values()))
