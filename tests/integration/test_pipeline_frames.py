"""On the real pipeline, a client on the 8 demo pairs gets one frame per window, not one per slot.

md_service closes its partitions' windows in 8 slots; before the frame clock, a gateway
flushed every event-loop turn and such a client received about 5 frames per window. Here
the real feed, md_service and gateway run as their commands, and the client counts the
frames it receives against the windows its deltas came from (a delta's ``ts`` is its
window's close; windows end on the wall clock's multiples of the window).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import websockets

from mdcore.codec import decode_server_frame, encode_client_op
from mdcore.instruments import default_pairs
from mdcore.messages import Delta, Subscribe
from tests.integration.pipeline_helpers import feed_in_background, feed_settings, md_and_gateway
from tests.integration.stack_helpers import isolated_stack, wait_until_async

pytestmark = pytest.mark.integration

PAIRS = tuple(default_pairs(8))
PARTITIONS = 8
RATE = 800  # events/s over 8 pairs: every pair changes in nearly every 100 ms window
EVENTS = 8000  # about 10 s of stream
WINDOW_NS = 100_000_000


@pytest.fixture(scope="module")
def stack(infra) -> Iterator[dict]:
    env, _topic, _prefix = isolated_stack(infra, "frames", PAIRS, PARTITIONS)
    with md_and_gateway(env) as (_md, gateway):
        yield {"env": env, "gateway": gateway}


async def test_a_client_on_the_8_demo_pairs_gets_one_frame_per_window(stack) -> None:
    assert len(PAIRS) == 8
    feed = feed_in_background(feed_settings(stack["env"], PAIRS, RATE, 5, PARTITIONS), EVENTS)
    frames: list[list[Delta]] = []
    async with websockets.connect(stack["gateway"].ws_url) as ws:
        await ws.send(encode_client_op(Subscribe(PAIRS, 1)))
        synced: set[str] = set()

        async def read() -> None:
            async for raw in ws:
                messages = decode_server_frame(raw)
                deltas = [m for m in messages if isinstance(m, Delta)]
                synced.update(getattr(m, "pair", "") for m in messages if type(m).__name__ == "Snapshot")
                if deltas and synced >= set(PAIRS) and len(frames) < 10_000:
                    frames.append(deltas)

        reader = asyncio.create_task(read())
        try:
            await wait_until_async(lambda: len(frames) >= 60, 60, "60 frames of deltas")
        finally:
            reader.cancel()
    feed.join(timeout=30)
    body = frames[5:]  # the first few may straddle the subscribe
    windows = {d.ts // WINDOW_NS for frame in body for d in frame}
    per_window = len(body) / len(windows)
    deltas_per_frame = sum(len(f) for f in body) / len(body)
    # one frame per window (a burst split by a late md_service slot costs one more now and then)
    assert per_window <= 1.3, f"{len(body)} frames for {len(windows)} windows"
    assert deltas_per_frame >= 5, f"only {deltas_per_frame:.1f} deltas per frame: windows were not packed"
