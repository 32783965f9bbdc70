"""One Binance stream connection as a pure state machine: messages in, answers and stream changes out.

Methods, answers and errors follow Binance's "Live Subscribing/Unsubscribing to streams":
``SUBSCRIBE`` / ``UNSUBSCRIBE`` answer ``{"result":null,"id":X}``, ``LIST_SUBSCRIPTIONS``
``{"result":[names],"id":X}``, ``SET_PROPERTY`` / ``GET_PROPERTY`` handle ``combined``;
errors are ``{"error":{"code":N,"msg":"..."},"id":X}`` with Binance's codes (0 unknown
property, 1 bad value type, 2 invalid request, 3 invalid JSON). The stream set is a set
of names: a stream named in the URL and subscribed again is delivered once.

Limits, as Binance documents them: at most ``rate`` incoming messages per second (a token
bucket; going over closes the connection with 1008) and ``max_streams`` streams.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.binance.streams import INVALID_STREAM, StreamSpec

log = logging.getLogger(__name__)

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
CLOSE_POLICY = 1008  # what Binance closes an over-rate connection with ("Too many requests")
_ID_STRING = re.compile(r"[A-Za-z0-9\-]{1,36}")  # "alphanumeric strings; max length 36" (UUIDs too)
_INT64 = (-(2**63), 2**63 - 1)
_BAD_ID = "Invalid request: request ID must be an unsigned integer"
_MISSING_ID = object()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the connection must do after one message: answer, change streams, or close."""

    reply: bytes | None = None
    added: tuple[StreamSpec, ...] = ()
    removed: tuple[StreamSpec, ...] = ()
    close: tuple[int, str] | None = None


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; time is passed in."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class _RequestError(Exception):
    def __init__(self, code: int, msg: str, request_id: Any = None) -> None:
        super().__init__(msg)
        self.code, self.msg, self.request_id = code, msg, request_id


def _answer(result: Any, request_id: Any) -> bytes:
    return orjson.dumps({"result": result, "id": request_id})


def _error(code: int, msg: str, request_id: Any) -> bytes:
    return orjson.dumps({"error": {"code": code, "msg": msg}, "id": request_id})


def _valid_id(value: Any) -> bool:
    if value is None:
        return True
    if type(value) is int:
        return _INT64[0] <= value <= _INT64[1]
    return type(value) is str and _ID_STRING.fullmatch(value) is not None


def _json_kind(value: Any) -> str:
    return {dict: "map", list: "sequence", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


class StreamSession:
    """Subscriptions and properties of one connection. ``resolve`` turns a name into a stream (or None)."""

    __slots__ = ("_bucket", "_resolve", "combined", "max_streams", "streams")

    def __init__(
        self,
        combined: bool,
        initial: Iterable[StreamSpec],
        resolve: Callable[[object], StreamSpec | None],
        *,
        max_streams: int,
        rate: float,
        now: float,
    ) -> None:
        self.combined = combined
        self.streams: dict[str, StreamSpec] = {spec.name: spec for spec in initial}
        self.max_streams = max_streams
        self._resolve = resolve
        self._bucket = TokenBucket(rate, rate, now)

    def pairs(self) -> set[str]:
        """The pairs whose books this connection needs."""
        return {spec.pair for spec in self.streams.values()}

    def receive(self, data: str | bytes, now: float) -> Outcome:
        """Handle one incoming message (text or binary) received at ``now`` (seconds, monotonic).

        Every input gets an answer: a request this code did not foresee is still code 2, so no
        message can end the connection with 1011 (and the streams stay as they were).
        """
        if not self._bucket.take(now):
            return Outcome(close=(CLOSE_POLICY, "Too many requests"))
        try:
            return self._handle(data)
        except _RequestError as exc:
            return Outcome(reply=_error(exc.code, exc.msg, exc.request_id))
        except Exception:
            log.warning("unexpected Binance request answered with code 2", exc_info=True)
            return Outcome(reply=_error(2, "Invalid request", None))

    # --- parsing --------------------------------------------------------------------------

    def _handle(self, data: str | bytes) -> Outcome:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _RequestError(
                3, f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}"
            ) from None
        if type(obj) is not dict:
            raise _RequestError(2, f"Invalid request: invalid type: {_json_kind(obj)}, expected a map")
        request_id = obj.get("id", _MISSING_ID)
        if request_id is _MISSING_ID or not _valid_id(request_id):
            raise _RequestError(2, _BAD_ID)
        if "method" not in obj:
            raise _RequestError(2, f"Invalid request: missing field `method` at line 1 column {len(data)}")
        method = obj["method"]
        if method not in METHODS or type(method) is not str:
            shown = method if type(method) is str else _json_kind(method)
            expected = ", ".join(f"`{m}`" for m in METHODS)
            raise _RequestError(
                2,
                f"Invalid request: unknown variant `{str(shown)[:40]}`, expected one of {expected}",
                request_id,
            )
        params = obj.get("params")
        if method == "SUBSCRIBE":
            return self._subscribe(self._names(params, request_id), request_id)
        if method == "UNSUBSCRIBE":
            return self._unsubscribe(self._names(params, request_id), request_id)
        if method == "LIST_SUBSCRIPTIONS":
            if params:
                raise _RequestError(2, "Invalid request: too many parameters", request_id)
            return Outcome(reply=_answer(list(self.streams), request_id))
        return self._property(method, params, request_id)

    @staticmethod
    def _names(params: Any, request_id: Any) -> list[str]:
        """The stream names of a SUBSCRIBE / UNSUBSCRIBE: a list of strings, else code 2."""
        if params is None:
            return []
        if type(params) is not list:
            raise _RequestError(
                2, f"Invalid request: invalid type: {_json_kind(params)}, expected a sequence", request_id
            )
        if not all(type(name) is str for name in params):  # [["x"]] or [{}] would not even hash
            raise _RequestError(2, INVALID_STREAM, request_id)
        return params

    # --- methods --------------------------------------------------------------------------

    def _subscribe(self, names: list[str], request_id: Any) -> Outcome:
        added: dict[str, StreamSpec] = {}
        for name in names:
            if name in self.streams or name in added:
                continue
            spec = self._resolve(name)
            if spec is None:
                raise _RequestError(2, INVALID_STREAM, request_id)
            added[spec.name] = spec
        if len(self.streams) + len(added) > self.max_streams:
            raise _RequestError(
                2, f"Invalid request: too many streams; at most {self.max_streams} per connection", request_id
            )
        self.streams.update(added)
        return Outcome(reply=_answer(None, request_id), added=tuple(added.values()))

    def _unsubscribe(self, names: list[str], request_id: Any) -> Outcome:
        removed = tuple(self.streams.pop(name) for name in dict.fromkeys(names) if name in self.streams)
        return Outcome(reply=_answer(None, request_id), removed=removed)

    def _property(self, method: str, params: Any, request_id: Any) -> Outcome:
        params = params if type(params) is list else []
        if not params or type(params[0]) is not str:
            raise _RequestError(2, "Invalid request: property name must be a string", request_id)
        if params[0] != "combined":
            raise _RequestError(0, "Unknown property", request_id)
        if method == "GET_PROPERTY":
            if len(params) != 1:
                raise _RequestError(2, "Invalid request: too many parameters", request_id)
            return Outcome(reply=_answer(self.combined, request_id))
        if len(params) > 2:
            raise _RequestError(2, "Invalid request: too many parameters", request_id)
        if len(params) < 2 or type(params[1]) is not bool:
            raise _RequestError(1, "Invalid value type: expected Boolean", request_id)
        self.combined = params[1]
        return Outcome(reply=_answer(None, request_id))
