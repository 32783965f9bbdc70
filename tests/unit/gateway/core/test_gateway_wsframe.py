"""gateway.core.wsframe: one server text frame, built once for every connection."""

from __future__ import annotations

import pytest

from gateway.core.wsframe import text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frame_matches_websockets_own_serialisation(size: int) -> None:
    from websockets.frames import Frame, Opcode

    payload = b"x" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)
