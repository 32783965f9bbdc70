"""gateway.core.wsframe: one server text frame, built once for every connection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from gateway.core.wsframe import text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frame_matches_websockets_own_serialisation(size: int) -> None:
    from websockets.frames import Frame, Opcode

    payload = b"x" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


def parse(data: bytes) -> Frame:
    """One frame as a websockets client reads it (unmasked, from a server), with nothing left over."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    with pytest.raises(StopIteration) as done:
        next(parser)
    at_eof = reader.at_eof()
    with pytest.raises(StopIteration) as end:
        next(at_eof)
    assert end.value.value is True, "bytes left over after the frame"
    return done.value.value


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, 2),
        (125, 2),  # the largest length in the 7-bit field
        (126, 4),  # 126 in the field: a 16-bit length follows
        (65535, 4),  # the largest 16-bit length
        (65536, 10),  # 127 in the field: a 64-bit length follows
    ],
)
def test_each_length_encoding_at_its_boundary_parses_back(size: int, header: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    data = text_frame(payload)
    assert len(data) == header + size
    assert data[0] == 0x81  # FIN, text
    assert data[1] & 0x80 == 0  # a server never masks
    frame = parse(data)
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT, True, payload)
    assert not (frame.rsv1 or frame.rsv2 or frame.rsv3)  # no extension negotiated


@settings(max_examples=200, deadline=None)
@given(st.text().map(str.encode) | st.binary(min_size=120, max_size=70_000))
def test_any_payload_parses_back_as_one_final_text_frame(payload: bytes) -> None:
    frame = parse(text_frame(payload))
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT, True, payload)
