"""The fan-out, stale clients and subscribe/recovery, with fake connections and the in-memory store.

No sockets: a fake transport records the exact bytes each client would receive, so the
grouping, the packing, the order of snapshot/replay/deltas and the conflation rules are
checked with plain calls (plus one event-loop turn for the deferred flush).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from md_service_free_fixtures import Stream
from websockets.protocol import CLOSED, OPEN

from gateway.config import GatewayConfig
from gateway.counters import Counters
from gateway.fanout import FanOut
from gateway.frame_clock import FrameClock
from gateway.hub import Hub
from gateway.memory_store import MemoryStore, MemoryStreams
from gateway.replica import PairReplica, ReplicaState
from gateway.slow import SlowClients
from gateway.subscriptions import resync, subscribe
from mdcore.codec import decode_server_frame, encode_snapshot
from mdcore.messages import Ack, Delta, Resync, Snapshot, StreamPosition, Subscribe


class FakeTransport:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.buffered = 0
        self.fail = False

    def write(self, data: bytes) -> None:
        if self.fail:
            raise RuntimeError("closed")
        self.frames.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return False


class FakeProtocol:
    def __init__(self) -> None:
        self.state = OPEN


class FakeSession:
    """Quacks like ClientSession for the fan-out."""

    def __init__(self, *pairs: str) -> None:
        self.pairs = set(pairs)
        self.group: Any = None
        self.transport = FakeTransport()
        self.protocol = FakeProtocol()
        self.lagging = False
        self.lag_since = 0.0
        self.lag_marks: dict[str, StreamPosition | None] = {}
        self.floors: dict[str, int] | None = None
        self.peer = "test"

    @property
    def open(self) -> bool:
        return self.protocol.state is OPEN

    def send(self, payload: bytes) -> bool:
        from gateway.wsframe import text_frame

        self.transport.write(text_frame(payload))
        return True

    def buffered_bytes(self) -> int:
        return self.transport.buffered

    def messages(self) -> list[object]:
        out: list[object] = []
        for frame in self.transport.frames:
            header = 2 if frame[1] < 126 else 4
            out += decode_server_frame(frame[header:])
        return out


async def turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_clients_with_the_same_pairs_share_one_frame_per_turn() -> None:
    counters = Counters()
    batches: list[dict] = []
    fan = FanOut(counters, batches.append)
    a, b, c = FakeSession("BTC-USD", "ETH-USD"), FakeSession("ETH-USD", "BTC-USD"), FakeSession("ETH-USD")
    for s in (a, b, c):
        fan.join(s)  # type: ignore[arg-type]
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
    fan.join(a)  # type: ignore[arg-type]
    fan.join(b)  # type: ignore[arg-type]
    a.pairs.add("ETH-USD")
    fan.join(a)  # type: ignore[arg-type]  # a new set: a new group
    assert a.group is not b.group and len(fan.groups) == 2
    b.protocol.state = CLOSED  # closing: never written to
    fan.queue("BTC-USD", 1, b"1")
    await turn()
    assert len(a.transport.frames) == 1 and b.transport.frames == []
    a.transport.fail = True
    fan.queue("BTC-USD", 2, b"2")
    await turn()
    assert counters["write_errors"] == 1
    fan.leave(a)  # type: ignore[arg-type]
    fan.leave(b)  # type: ignore[arg-type]
    assert fan.groups == {} and fan.by_pair == {}


# --- the hub on the in-memory store ------------------------------------------------------


def make_hub(windows: int = 30, recent: int = 5, history_from: int = 10) -> tuple[Hub, MemoryStore, Stream]:
    """A hub on the in-memory store, which holds the stream up to seq 20 with history from
    ``history_from`` on (a snapshot just before it)."""
    cfg = GatewayConfig(
        redis_url="redis://127.0.0.1:1/0", pairs=("ETH-USD",), recent_deltas=recent,
        frame_quiet_ms=0, frame_hold_ms=0,  # flush at the end of each turn: the tests step turns
    )  # fmt: skip
    stream = Stream("ETH-USD", windows)
    streams = MemoryStreams(history=windows)
    start = history_from - 1
    snapshot = encode_snapshot(stream.book_at(start).to_snapshot())
    streams.write("ETH-USD", stream.epoch, start, start, b"", snapshot)
    for seq in range(history_from, 21):
        streams.write("ETH-USD", stream.epoch, seq, seq, stream.delta(seq))
    hub = Hub(cfg, store=streams.connect)
    assert isinstance(hub.link, MemoryStore)
    return hub, hub.link, stream


def live_replica(hub: Hub, stream: Stream, at: int, recent_from: int) -> PairReplica:
    replica = PairReplica("ETH-USD", hub._on_delta, hub._on_live, hub.cfg.recent_deltas)
    replica.local = stream.book_at(at)
    replica.state = ReplicaState.LIVE
    replica.not_live_since = None
    for seq in range(recent_from, at + 1):
        replica.recent.append((seq, stream.delta(seq)))
    hub.replicas["ETH-USD"] = replica
    return replica


@pytest.mark.parametrize(
    ("since", "recovered", "reads"),
    [(17, True, 0), (12, True, 1), (5, False, 1), (20, True, 0)],
    ids=["memory", "history", "too-old", "up-to-date"],
)
async def test_subscribe_with_since_replays_or_snapshots_in_one_answer(since, recovered, reads) -> None:
    hub, link, stream = make_hub()
    live_replica(hub, stream, at=20, recent_from=16)
    session = FakeSession()
    hub.open_session(session)  # type: ignore[arg-type]
    op = Subscribe(("ETH-USD",), 9, {"ETH-USD": StreamPosition(stream.epoch, since)})
    await subscribe(hub, session, op)  # type: ignore[arg-type]
    messages = session.messages()
    assert isinstance(messages[0], Ack) and messages[0].recovered is recovered and messages[0].id == 9
    if recovered:
        assert [m.seq for m in messages[1:]] == list(range(since + 1, 21))
        assert all(isinstance(m, Delta) for m in messages[1:])
    else:
        assert [type(m) for m in messages[1:]] == [Snapshot] and messages[1].seq == 20
    assert link.history_reads == reads and len(session.transport.frames) == 1  # all in one frame
    # and then live deltas continue through the fan-out
    hub.on_message("ETH-USD", stream.delta(21))
    await turn()
    assert session.messages()[-1].seq == 21


async def test_a_stale_client_is_healed_with_snapshots_of_the_pairs_that_moved_only() -> None:
    hub, _link, stream = make_hub()
    replica = live_replica(hub, stream, at=20, recent_from=16)
    replica.sent = replica.position
    slow = SlowClients(hub)
    session = FakeSession()
    hub.open_session(session)  # type: ignore[arg-type]
    await subscribe(hub, session, Subscribe(("ETH-USD",), 1))  # type: ignore[arg-type]
    assert session.group is not None
    slow.paused(session)  # type: ignore[arg-type]
    assert session.lagging and session.group is None and hub.counters["slow_paused"] == 1
    hub.on_message("ETH-USD", stream.delta(21))
    await turn()
    assert [type(m) for m in session.messages()] == [Ack, Snapshot]  # nothing while stale
    slow.heal(session)  # type: ignore[arg-type]  # drained
    assert [type(m) for m in session.messages()] == [Ack, Snapshot, Snapshot]
    assert session.messages()[-1].seq == 21 and session.group is not None
    hub.on_message("ETH-USD", stream.delta(22))
    await turn()
    assert session.messages()[-1].seq == 22
    # stale again, but the pair does not move meanwhile: healing sends nothing
    slow.paused(session)  # type: ignore[arg-type]
    slow.heal(session)  # type: ignore[arg-type]
    assert len(session.messages()) == 4 and hub.counters["slow_conflations"] == 2
    assert hub.counters["slow_conflation_snapshots"] == 1


# --- one frame per window, and S+1 after a snapshot ---------------------------------------


async def wait_until(predicate, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


async def test_a_window_arriving_over_several_loop_turns_leaves_as_one_frame_per_client() -> None:
    counters = Counters()
    fan = FanOut(counters, lambda batch: None, FrameClock(quiet_s=0.02, hold_s=1.0))
    client = FakeSession(*(f"P{k}" for k in range(8)))
    fan.join(client)  # type: ignore[arg-type]
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
    fan.join(client)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    start = loop.time()
    seq = 0
    while not client.transport.frames:
        seq += 1
        fan.queue("P0", seq, b"%d" % seq)
        await asyncio.sleep(0.005)
        assert loop.time() - start < 2.0
    assert 1 < seq < 100


async def test_a_subscribe_while_deltas_are_pending_continues_at_the_snapshots_seq_plus_one() -> None:
    hub, _link, stream = make_hub()
    live_replica(hub, stream, at=20, recent_from=16)
    old = FakeSession()
    hub.open_session(old)  # type: ignore[arg-type]
    await subscribe(hub, old, Subscribe(("ETH-USD",), 1))  # type: ignore[arg-type]
    hub.on_message("ETH-USD", stream.delta(21))  # pending: not flushed before the next subscribe
    hub.on_message("ETH-USD", stream.delta(22))
    new = FakeSession()
    hub.open_session(new)  # type: ignore[arg-type]
    resumed = FakeSession()
    hub.open_session(resumed)  # type: ignore[arg-type]
    await subscribe(hub, new, Subscribe(("ETH-USD",), 2))  # type: ignore[arg-type]
    since = {"ETH-USD": StreamPosition(stream.epoch, 19)}
    await subscribe(hub, resumed, Subscribe(("ETH-USD",), 3, since))  # type: ignore[arg-type]
    hub.on_message("ETH-USD", stream.delta(23))
    await turn()
    seqs_old = [m.seq for m in old.messages() if isinstance(m, (Snapshot, Delta))]
    assert seqs_old == [20, 21, 22, 23]
    seqs_new = [m.seq for m in new.messages() if isinstance(m, (Snapshot, Delta))]
    assert seqs_new == [22, 23]  # snapshot at 22, then 23: never 21 or 22 again
    seqs_resumed = [m.seq for m in resumed.messages() if isinstance(m, (Snapshot, Delta))]
    assert seqs_resumed == [20, 21, 22, 23]  # replayed 20..22, then 23


async def test_a_resync_while_deltas_are_pending_continues_at_the_snapshots_seq_plus_one() -> None:
    hub, _link, stream = make_hub()
    live_replica(hub, stream, at=20, recent_from=16)
    session = FakeSession()
    hub.open_session(session)  # type: ignore[arg-type]
    await subscribe(hub, session, Subscribe(("ETH-USD",), 1))  # type: ignore[arg-type]
    hub.on_message("ETH-USD", stream.delta(21))
    resync(hub, session, Resync("ETH-USD", 2))  # type: ignore[arg-type]
    await turn()
    seqs = [m.seq for m in session.messages() if isinstance(m, (Snapshot, Delta))]
    assert seqs == [20, 21]  # the snapshot at 21; the pending 21 is not sent again
    hub.on_message("ETH-USD", stream.delta(22))
    await turn()
    assert [m.seq for m in session.messages() if isinstance(m, (Snapshot, Delta))] == [20, 21, 22]


async def test_a_snapshot_is_encoded_once_per_pair_and_seq_however_many_subscribe(monkeypatch) -> None:
    import gateway.replica as replica_module

    encodes: list[int] = []
    real = replica_module.encode_snapshot

    def counting(snap):
        encodes.append(snap.seq)
        return real(snap)

    monkeypatch.setattr(replica_module, "encode_snapshot", counting)
    hub, _link, stream = make_hub()
    live_replica(hub, stream, at=20, recent_from=16)
    sessions = [FakeSession() for _ in range(50)]
    for n, session in enumerate(sessions):
        hub.open_session(session)  # type: ignore[arg-type]
        await subscribe(hub, session, Subscribe(("ETH-USD",), n))  # type: ignore[arg-type]
        if n == 24:  # the stream moves on halfway: one more encoding, at the new seq
            hub.on_message("ETH-USD", stream.delta(21))
    assert encodes == [20, 21]
    assert all(isinstance(s.messages()[1], Snapshot) for s in sessions)


@pytest.mark.parametrize(
    "payload", [b"[]", b"null", b"1", b"{}", b'{"type":"delta"}', b"\xff", b'{"type":"delta']
)
async def test_a_message_from_redis_that_is_not_a_delta_is_counted_and_ignored(payload) -> None:
    hub, _link, stream = make_hub()
    live_replica(hub, stream, at=20, recent_from=16)
    hub.on_message("ETH-USD", payload)  # must not raise into the Pub/Sub reader (it reconnected)
    assert hub.counters["redis_bad_messages"] == 1
    hub.on_message("ETH-USD", stream.delta(21))
    assert hub.replicas["ETH-USD"].local.seq == 21


async def test_a_client_that_goes_stale_mid_answer_gets_the_rest_as_snapshots_when_it_drains(
    monkeypatch,
) -> None:
    import gateway.subscriptions as subscriptions_module

    monkeypatch.setattr(subscriptions_module, "PACK_FRAME_BYTES", 16)  # every message a frame of its own
    hub, _link, stream = make_hub()
    live_replica(hub, stream, at=20, recent_from=16)
    slow = SlowClients(hub)
    session = FakeSession()
    hub.open_session(session)  # type: ignore[arg-type]
    writes = session.transport.write

    def write_then_pause(data: bytes) -> None:  # the first frame passes the high-water mark
        writes(data)
        if not session.lagging:
            slow.paused(session)  # type: ignore[arg-type]

    session.transport.write = write_then_pause  # type: ignore[method-assign]
    await subscribe(hub, session, Subscribe(("ETH-USD",), 1))  # type: ignore[arg-type]
    assert [type(m) for m in session.messages()] == [Ack]  # the snapshot was not written
    assert session.lag_marks == {"ETH-USD": None} and hub.counters["answers_cut"] == 1
    session.transport.write = writes  # type: ignore[method-assign]
    slow.heal(session)  # type: ignore[arg-type]  # drained: the owed snapshot now
    assert [type(m) for m in session.messages()] == [Ack, Snapshot] and session.group is not None
