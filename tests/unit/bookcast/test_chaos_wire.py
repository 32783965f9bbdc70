"""The raw WebSocket bytes the garbage and stalled clients send, and reading the gateway's back."""

from __future__ import annotations

import struct

from bookcast.chaos import wire


def test_frames_of_every_length_encoding_read_back() -> None:
    payloads = [b"", b"x" * 125, b"y" * 126, b"z" * 70_000]
    stream = b"".join(wire.frame(wire.OP_TEXT, p, mask=False) for p in payloads)
    frames, rest = wire.parse_frames(stream + b"\x81")  # and the start of one more
    assert [f.payload for f in frames] == payloads and rest == b"\x81"


def test_a_masked_frame_carries_its_key_and_hides_the_payload() -> None:
    data = wire.text('{"op":"ping"}')
    assert data[0] == 0x81 and data[1] == 0x80 | 13
    key, body = data[2:6], data[6:]
    assert bytes(b ^ key[i % 4] for i, b in enumerate(body)) == b'{"op":"ping"}'


def test_lies_and_reserved_bits_are_written_as_asked() -> None:
    lie = wire.frame(wire.OP_TEXT, b"{}", mask=False, claimed_length=1 << 40)
    assert lie[1] == 127 and struct.unpack("!Q", lie[2:10])[0] == 1 << 40 and lie[10:] == b"{}"
    assert wire.frame(wire.OP_TEXT, b"", rsv=4, mask=False)[0] == 0x80 | 0x40 | 0x1


def test_close_codes_and_statuses_are_read() -> None:
    frames, _ = wire.parse_frames(wire.frame(wire.OP_CLOSE, struct.pack("!H", 4008) + b"slow", mask=False))
    assert frames[0].close_code == 4008
    assert wire.status_of(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket") == 101
    assert wire.status_of(b"\x15\x03\x01") is None


def test_a_handshake_may_repeat_headers() -> None:
    request = wire.handshake(extra=[("Origin", "http://a"), ("Origin", "http://b")])
    assert request.startswith(b"GET /ws HTTP/1.1\r\n") and request.endswith(b"\r\n\r\n")
    assert request.count(b"\r\nOrigin: ") == 2
