"""gateway.slow: a stale client is healed with snapshots of the pairs that moved, and nothing else."""

from __future__ import annotations

from gateway.slow import SlowClients
from gateway.subscriptions import subscribe
from mdcore.messages import Ack, Snapshot, Subscribe
from tests.unit.gateway.gateway_fakes import FakeSession, live_replica, make_hub, turn


async def test_a_stale_client_is_healed_with_snapshots_of_the_pairs_that_moved_only() -> None:
    hub, _link, stream = make_hub()
    replica = live_replica(hub, stream, at=20, recent_from=16)
    replica.sent = replica.position
    slow = SlowClients(hub)
    session = FakeSession()
    hub.open_session(session)
    await subscribe(hub, session, Subscribe(("ETH-USD",), 1))
    assert session.group is not None
    slow.paused(session)
    assert session.lagging and session.group is None and hub.counters["slow_paused"] == 1
    hub.on_message("ETH-USD", stream.delta(21))
    await turn()
    assert [type(m) for m in session.messages()] == [Ack, Snapshot]  # nothing while stale
    slow.heal(session)  # drained
    assert [type(m) for m in session.messages()] == [Ack, Snapshot, Snapshot]
    assert session.messages()[-1].seq == 21 and session.group is not None
    hub.on_message("ETH-USD", stream.delta(22))
    await turn()
    assert session.messages()[-1].seq == 22
    # stale again, but the pair does not move meanwhile: healing sends nothing
    slow.paused(session)
    slow.heal(session)
    assert len(session.messages()) == 4 and hub.counters["slow_conflations"] == 2
    assert hub.counters["slow_conflation_snapshots"] == 1
