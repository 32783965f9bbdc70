"""The load-generator benchmark's input: raw server frames, and a stream a verifying client accepts.

The benchmark run itself (``python -m clients.load.bench``: a blaster process and three
timed receivers) is a measurement, not a check, and has no test.
"""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from clients.load.bench import CYCLE, PAIR, _frame, _stream
from clients.load.checker import StreamChecker
from clients.load.stats import Latencies, LoadCounters


def parse(data: bytes) -> tuple[Frame, int]:
    """The first frame in ``data`` as a client reads it (unmasked), and the bytes left after it."""
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value, len(reader.buffer)
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize(
    ("size", "header"), [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10), (70_000, 10)]
)
def test_a_frame_of_any_size_reads_back_as_one_final_text_frame(size, header) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    framed = _frame(payload)
    assert len(framed) == header + size
    frame, left = parse(framed + b"next")
    assert (frame.opcode, frame.fin, frame.data, left) == (Opcode.TEXT, True, payload, 4)


def test_the_stream_is_a_snapshot_and_a_cycle_of_deltas_that_verify() -> None:
    snapshot, deltas = _stream(levels=25)
    assert len(deltas) == CYCLE
    counters = LoadCounters()
    checker = StreamChecker([PAIR], counters, Latencies(), verify=True)
    for framed in [snapshot, *deltas]:
        frame, left = parse(framed)
        assert left == 0
        checker.on_frame(frame.data, 1)
    assert (counters.snapshots, counters.deltas) == (1, CYCLE)
    assert counters.verified == CYCLE + 1
    assert counters.gaps == counters.checksum_failures == counters.bad_frames == 0
