"""Just enough of RFC 6455 to misbehave on purpose: handshakes and client frames, raw.

A WebSocket library refuses to send what a hostile or broken client sends (unmasked or
reserved frames, lies about lengths, handshakes with repeated headers), so the garbage
bursts and stalled clients build their bytes here. Pure.
"""

from __future__ import annotations

import base64
import os
import struct
from dataclasses import dataclass

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def handshake(
    path: str = "/ws", host: str = "127.0.0.1", extra: list[tuple[str, str]] | None = None
) -> bytes:
    """An HTTP/1.1 upgrade request; ``extra`` headers are appended as given (repeats allowed)."""
    key = base64.b64encode(os.urandom(16)).decode()
    headers = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
        *(extra or []),
    ]
    lines = [f"GET {path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    mask: bool = True,
    rsv: int = 0,
    claimed_length: int | None = None,
) -> bytes:
    """One client frame. ``claimed_length`` writes a length other than the payload's (a lie)."""
    length = len(payload) if claimed_length is None else claimed_length
    head = bytearray([(0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)])
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head.append(mask_bit | length)
    elif length < 1 << 16:
        head.append(mask_bit | 126)
        head += struct.pack("!H", length)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", length)
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes(head) + key + masked


def text(data: str | bytes) -> bytes:
    """A masked text frame (``bytes`` are sent as they are, valid UTF-8 or not)."""
    return frame(OP_TEXT, data.encode() if isinstance(data, str) else data)


@dataclass(frozen=True, slots=True)
class ServerFrame:
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])


def parse_frames(buffer: bytes) -> tuple[list[ServerFrame], bytes]:
    """Complete (unmasked) server frames at the start of ``buffer``, and the bytes left over."""
    frames = []
    pos = 0
    while len(buffer) - pos >= 2:
        opcode, second = buffer[pos] & 0xF, buffer[pos + 1]
        length, head = second & 0x7F, 2
        if length == 126:
            if len(buffer) - pos < 4:
                break
            length, head = struct.unpack("!H", buffer[pos + 2 : pos + 4])[0], 4
        elif length == 127:
            if len(buffer) - pos < 10:
                break
            length, head = struct.unpack("!Q", buffer[pos + 2 : pos + 10])[0], 10
        if second & 0x80:
            head += 4  # a server never masks; tolerate it anyway
        if len(buffer) - pos < head + length:
            break
        frames.append(ServerFrame(opcode, bytes(buffer[pos + head : pos + head + length])))
        pos += head + length
    return frames, buffer[pos:]


def status_of(response_head: bytes) -> int | None:
    """The status code of an HTTP response's first line, None if it is not one."""
    first = response_head.split(b"\r\n", 1)[0].split()
    if len(first) >= 2 and first[0].startswith(b"HTTP/") and first[1].isdigit():
        return int(first[1])
    return None
