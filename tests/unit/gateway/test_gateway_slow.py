"""gateway.slow: a stale client is healed with snapshots of the pairs that moved, and nothing else."""

from __future__ import annotations

import asyncio
import dataclasses

from gateway.slow import CLOSE_TOO_SLOW, SlowClients
from gateway.subscriptions import subscribe
from mdcore.messages import Ack, Snapshot, Subscribe
from tests.unit.gateway.gateway_fakes import FakeSession, live_replica, make_hub, turn, wait_until


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


async def stale_subscriber(**settings: object):
    """A hub with ETH-USD live at 20, and a subscribed session that just went stale."""
    hub, _link, stream = make_hub()
    if settings:
        hub.cfg = dataclasses.replace(hub.cfg, **settings)
    replica = live_replica(hub, stream, at=20, recent_from=16)
    replica.sent = replica.position
    slow = SlowClients(hub)
    session = FakeSession()
    hub.open_session(session)
    await subscribe(hub, session, Subscribe(("ETH-USD",), 1))
    slow.paused(session)
    assert session.lagging and session in slow.stale
    return hub, stream, slow, session


async def test_a_drained_client_is_healed_on_the_next_turn_not_inside_the_transports_callback() -> None:
    hub, stream, slow, session = await stale_subscriber()
    hub.on_message("ETH-USD", stream.delta(21))
    slow.resumed(session)
    assert session.lagging  # the transport's callback only schedules the healing
    await turn()
    assert not session.lagging and session.group is not None and session not in slow.stale
    assert session.messages()[-1].seq == 21
    slow.resumed(session)  # not stale: nothing to heal
    await turn()
    assert len(session.messages()) == 3 and hub.counters["slow_conflations"] == 1


async def test_a_client_still_above_the_low_water_mark_is_not_healed_yet() -> None:
    hub, stream, slow, session = await stale_subscriber()
    hub.on_message("ETH-USD", stream.delta(21))
    session.transport.buffered = hub.cfg.low_water_bytes + 1  # it filled up again
    slow.heal(session)
    assert session.lagging and session.group is None and len(session.messages()) == 2
    session.transport.buffered = hub.cfg.low_water_bytes
    slow.heal(session)
    assert not session.lagging and session.messages()[-1].seq == 21


async def test_a_stale_client_owed_a_snapshot_gets_it_when_healed_even_if_the_pair_did_not_move() -> None:
    hub, _stream, slow, session = await stale_subscriber()
    hub.snapshot_for(session, "ETH-USD")  # a resync while stale: owed, not sent
    assert len(session.messages()) == 2
    slow.heal(session)
    assert [m.seq for m in session.messages()[1:]] == [20, 20]
    assert hub.counters["slow_conflation_snapshots"] == 1


async def test_closing_unknown_or_already_stale_sessions_are_left_alone() -> None:
    hub, _stream, slow, session = await stale_subscriber()
    marks = dict(session.lag_marks)
    slow.paused(session)  # already stale: the first marks stand
    assert session.lag_marks == marks and hub.counters["slow_paused"] == 1
    session.close(1000, "bye")
    slow.heal(session)
    assert not session.lagging and session.group is None and len(session.messages()) == 2
    stranger = FakeSession("ETH-USD")  # not one of the hub's sessions
    slow.paused(stranger)
    assert not stranger.lagging and stranger not in slow.stale and hub.counters["slow_paused"] == 1


async def test_the_watch_closes_a_client_stale_longer_than_slow_close_s_with_4008() -> None:
    hub, _stream, slow, session = await stale_subscriber(slow_close_s=0.0)
    keeps = FakeSession()
    hub.open_session(keeps)
    await subscribe(hub, keeps, Subscribe(("ETH-USD",), 2))
    watch = asyncio.ensure_future(slow.watch())
    try:
        await wait_until(lambda: session.closed_with is not None)
    finally:
        watch.cancel()
    assert session.closed_with == (CLOSE_TOO_SLOW, "too slow: could not keep up")
    assert hub.counters["closed_slow"] == 1 and session not in slow.stale
    assert keeps.closed_with is None  # only the stale one
