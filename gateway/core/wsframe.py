"""Server-to-client WebSocket text frames, serialised once and written to many connections.

A frame from a server is never masked and the gateway negotiates no extension, so the same
bytes (header + payload) are valid on every connection: the fan-out builds a frame once and
hands it to each transport, instead of letting ``websockets`` re-frame (and copy) the payload
per client. RFC 6455 section 5.2.
"""

from __future__ import annotations

_FIN_TEXT = 0x81  # FIN bit + opcode 1 (text)


def text_frame(payload: bytes) -> bytes:
    """One complete, unmasked, final text frame carrying ``payload`` (UTF-8 JSON)."""
    size = len(payload)
    if size < 126:
        return bytes((_FIN_TEXT, size)) + payload
    if size < 65536:
        return bytes((_FIN_TEXT, 126)) + size.to_bytes(2, "big") + payload
    return bytes((_FIN_TEXT, 127)) + size.to_bytes(8, "big") + payload
