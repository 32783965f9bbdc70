"""gateway.subscriptions: subscribe and resync answers — since replays, snapshots, S+1 after them."""

from __future__ import annotations

import pytest

from gateway.slow import SlowClients
from gateway.subscriptions import resync, subscribe
from mdcore.messages import Ack, Delta, Resync, Snapshot, StreamPosition, Subscribe
from tests.unit.gateway.gateway_fakes import FakeSession, live_replica, make_hub, turn


@pytest.mark.parametrize(
    ("since", "recovered", "reads"),
    [(17, True, 0), (12, True, 1), (5, False, 1), (20, True, 0)],
    ids=["memory", "history", "too-old", "up-to-date"],
)
async def test_subscribe_with_since_replays_or_snapshots_in_one_answer(since, recovered, reads) -> None:
    hub, link, stream = make_hub()
    live_replica(hub, stream, at=20, recent_from=16)
    session = FakeSession()
    hub.open_session(session)
    op = Subscribe(("ETH-USD",), 9, {"ETH-USD": StreamPosition(stream.epoch, since)})
    await subscribe(hub, session, op)
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


async def test_a_subscribe_while_deltas_are_pending_continues_at_the_snapshots_seq_plus_one() -> None:
    hub, _link, stream = make_hub()
    live_replica(hub, stream, at=20, recent_from=16)
    old = FakeSession()
    hub.open_session(old)
    await subscribe(hub, old, Subscribe(("ETH-USD",), 1))
    hub.on_message("ETH-USD", stream.delta(21))  # pending: not flushed before the next subscribe
    hub.on_message("ETH-USD", stream.delta(22))
    new = FakeSession()
    hub.open_session(new)
    resumed = FakeSession()
    hub.open_session(resumed)
    await subscribe(hub, new, Subscribe(("ETH-USD",), 2))
    since = {"ETH-USD": StreamPosition(stream.epoch, 19)}
    await subscribe(hub, resumed, Subscribe(("ETH-USD",), 3, since))
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
    hub.open_session(session)
    await subscribe(hub, session, Subscribe(("ETH-USD",), 1))
    hub.on_message("ETH-USD", stream.delta(21))
    resync(hub, session, Resync("ETH-USD", 2))
    await turn()
    seqs = [m.seq for m in session.messages() if isinstance(m, (Snapshot, Delta))]
    assert seqs == [20, 21]  # the snapshot at 21; the pending 21 is not sent again
    hub.on_message("ETH-USD", stream.delta(22))
    await turn()
    assert [m.seq for m in session.messages() if isinstance(m, (Snapshot, Delta))] == [20, 21, 22]


async def test_a_snapshot_is_encoded_once_per_pair_and_seq_however_many_subscribe(monkeypatch) -> None:
    import gateway.core.replica as replica_module

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
        hub.open_session(session)
        await subscribe(hub, session, Subscribe(("ETH-USD",), n))
        if n == 24:  # the stream moves on halfway: one more encoding, at the new seq
            hub.on_message("ETH-USD", stream.delta(21))
    assert encodes == [20, 21]
    assert all(isinstance(s.messages()[1], Snapshot) for s in sessions)


async def test_a_client_that_goes_stale_mid_answer_gets_the_rest_as_snapshots_when_it_drains(
    monkeypatch,
) -> None:
    import gateway.subscriptions as subscriptions_module

    monkeypatch.setattr(subscriptions_module, "PACK_FRAME_BYTES", 16)  # every message a frame of its own
    hub, _link, stream = make_hub()
    live_replica(hub, stream, at=20, recent_from=16)
    slow = SlowClients(hub)
    session = FakeSession()
    hub.open_session(session)
    writes = session.transport.write

    def write_then_pause(data: bytes) -> None:  # the first frame passes the high-water mark
        writes(data)
        if not session.lagging:
            slow.paused(session)

    session.transport.write = write_then_pause  # type: ignore[method-assign]
    await subscribe(hub, session, Subscribe(("ETH-USD",), 1))
    assert [type(m) for m in session.messages()] == [Ack]  # the snapshot was not written
    assert session.lag_marks == {"ETH-USD": None} and hub.counters["answers_cut"] == 1
    session.transport.write = writes  # type: ignore[method-assign]
    slow.heal(session)  # drained: the owed snapshot now
    assert [type(m) for m in session.messages()] == [Ack, Snapshot] and session.group is not None
