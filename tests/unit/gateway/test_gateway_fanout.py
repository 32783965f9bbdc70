"""gateway.fanout: clients grouped by their pairs, one frame per group per window, built once."""

from __future__ import annotations

import asyncio

from websockets.protocol import CLOSED

from gateway.core.counters import Counters
from gateway.core.frame_clock import FrameClock
from gateway.fanout import FanOut
from tests.unit.gateway.gateway_fakes import FakeSession, turn, wait_until


async def test_clients_with_the_same_pairs_share_one_frame_per_turn() -> None:
    counters = Counters()
    batches: list[dict] = []
    fan = FanOut(counters, batches.append)
    a, b, c = FakeSession("BTC-USD", "ETH-USD"), FakeSession("ETH-USD", "BTC-USD"), FakeSession("ETH-USD")
    for s in (a, b, c):
        fan.join(s)
    assert a.group is b.group and c.group is not a.group and len(fan.groups) == 2
    fan.queue("BTC-USD", 1, b'{"d":"btc1"}')
    fan.queue("ETH-USD", 7, b'{"d":"eth7"}')
    fan.queue("BTC-USD", 2, b'{"d":"btc2"}')
    await turn()
    assert a.transport.frames == b.transport.frames
    assert len(a.transport.frames) == 1 and a.transport.frames[0] is b.transport.frames[0]  # built once
    assert a.transport.frames[0].endswith(b'[{"d":"btc1"},{"d":"btc2"},{"d":"eth7"}]')
    assert c.transport.frames[0].endswith(b'{"d":"eth7"}')  # a lone message is not wrapped
    assert counters["frames_built"] == 2 and counters["frames_out"] == 3 and counters["deltas_out"] == 7
    assert list(batches[0]) == ["BTC-USD", "ETH-USD"]


async def test_moving_leaving_closed_and_failing_sessions() -> None:
    counters = Counters()
    fan = FanOut(counters, lambda batch: None)
    a, b = FakeSession("BTC-USD"), FakeSession("BTC-USD")
    fan.join(a)
    fan.join(b)
    a.pairs.add("ETH-USD")
    fan.join(a)  # a new set: a new group
    assert a.group is not b.group and len(fan.groups) == 2
    b.protocol.state = CLOSED  # closing: never written to
    fan.queue("BTC-USD", 1, b"1")
    await turn()
    assert len(a.transport.frames) == 1 and b.transport.frames == []
    a.transport.fail = True
    fan.queue("BTC-USD", 2, b"2")
    await turn()
    assert counters["write_errors"] == 1
    fan.leave(a)
    fan.leave(b)
    assert fan.groups == {} and fan.by_pair == {}


async def test_a_window_arriving_over_several_loop_turns_leaves_as_one_frame_per_client() -> None:
    counters = Counters()
    fan = FanOut(counters, lambda batch: None, FrameClock(quiet_s=0.02, hold_s=1.0))
    client = FakeSession(*(f"P{k}" for k in range(8)))
    fan.join(client)
    for k in range(8):  # md_service's 8 slots: one pair per slot, a few ms apart
        fan.queue(f"P{k}", 1, b'{"s":%d}' % k)
        await asyncio.sleep(0.002)
    assert client.transport.frames == []  # still inside the burst
    await wait_until(lambda: client.transport.frames)
    assert len(client.transport.frames) == 1 and counters["flushes"] == 1
    assert client.transport.frames[0].endswith(b"[" + b",".join(b'{"s":%d}' % k for k in range(8)) + b"]")
    fan.queue("P0", 2, b'{"s":8}')  # the next window: a frame of its own
    await wait_until(lambda: len(client.transport.frames) == 2)


async def test_a_burst_that_never_ends_still_leaves_after_the_hold() -> None:
    fan = FanOut(Counters(), lambda batch: None, FrameClock(quiet_s=0.05, hold_s=0.05))
    client = FakeSession("P0")
    fan.join(client)
    loop = asyncio.get_running_loop()
    start = loop.time()
    seq = 0
    while not client.transport.frames:
        seq += 1
        fan.queue("P0", seq, b"%d" % seq)
        await asyncio.sleep(0.005)
        assert loop.time() - start < 2.0
    assert 1 < seq < 100
