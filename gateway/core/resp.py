"""A small incremental RESP2 parser and encoder: just what a Pub/Sub subscriber receives.

Pure (bytes in, values out), so it is tested with plain calls. Values: bulk strings ->
``bytes`` (``None`` for a null), integers -> ``int``, simple strings -> :class:`Status`,
errors -> :class:`RespError`, arrays -> ``list``. RESP3 push frames (``>``) parse as arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_BULK = 512 * 1024 * 1024  # Redis' own limit on a string


class Status(str):
    """A simple-string reply such as ``OK`` or ``PONG``."""


class RespError(Exception):
    """An error reply from the server (``-ERR …``)."""


class RespProtocolError(ValueError):
    """Bytes that are not RESP: the connection must be dropped."""


class RespParser:
    """Feed bytes, get every complete reply; a partial reply waits for more bytes."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> list[object]:
        buf = self._buf
        buf += data
        replies: list[object] = []
        while self._pos < len(buf):
            try:
                value, end = self._parse(buf, self._pos)
            except _NeedMore:
                break
            replies.append(value)
            self._pos = end
        if self._pos:
            del buf[: self._pos]
            self._pos = 0
        return replies

    def _line(self, buf: bytearray, pos: int) -> tuple[bytes, int]:
        end = buf.find(b"\r\n", pos)
        if end < 0:
            if len(buf) - pos > 64 * 1024:
                raise RespProtocolError("header line too long")
            raise _NeedMore
        return bytes(buf[pos:end]), end + 2

    def _parse(self, buf: bytearray, pos: int) -> tuple[object, int]:
        kind = buf[pos]
        line, pos = self._line(buf, pos + 1)
        if kind == 0x24:  # $ bulk string
            size = _int(line)
            if size < 0:
                return None, pos
            if size > MAX_BULK:
                raise RespProtocolError(f"bulk string of {size} bytes")
            if len(buf) < pos + size + 2:
                raise _NeedMore
            return bytes(buf[pos : pos + size]), pos + size + 2
        if kind in (0x2A, 0x3E):  # * array, > push
            count = _int(line)
            if count < 0:
                return None, pos
            items: list[object] = []
            for _ in range(count):
                if pos >= len(buf):
                    raise _NeedMore
                item, pos = self._parse(buf, pos)
                items.append(item)
            return items, pos
        if kind == 0x3A:  # : integer
            return _int(line), pos
        if kind == 0x2B:  # + simple string
            return Status(line.decode("utf-8", "replace")), pos
        if kind == 0x2D:  # - error
            return RespError(line.decode("utf-8", "replace")), pos
        raise RespProtocolError(f"unexpected RESP type byte {kind!r}")


class _NeedMore(Exception):
    pass


def _int(line: bytes) -> int:
    try:
        return int(line)
    except ValueError:
        raise RespProtocolError(f"not an integer: {line[:40]!r}") from None


def encode_command(args: Sequence[str | bytes]) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)
