"""gateway.pair_channel: one wanted pair's state (followers, owed snapshots, claims, linger, audit
marks), and the hub as the one code that makes, keeps and drops a channel."""

from __future__ import annotations

import asyncio
import dataclasses

from gateway.core.replica import PairReplica, ReplicaState
from gateway.pair_channel import PairChannel
from tests.unit.gateway.gateway_fakes import FakeSession, live_replica, make_hub, turn, wait_until


def channel_of(pair: str = "ETH-USD") -> PairChannel:
    return PairChannel(PairReplica(pair, lambda *_: None, lambda *_: None))


# --- the channel on its own --------------------------------------------------------------------


def test_a_pair_is_wanted_while_followed_or_claimed_and_extra_unclaims_do_not_go_negative() -> None:
    channel = channel_of()
    assert channel.pair == "ETH-USD" and not channel.wanted
    session = FakeSession("ETH-USD")
    channel.follow(session)
    assert channel.wanted
    channel.unfollow(session)
    assert not channel.wanted
    channel.claim()
    channel.claim()
    channel.unclaim()
    assert channel.wanted  # one claim is still in progress
    channel.unclaim()
    channel.unclaim()  # one too many: ignored, not a debt the next claim must pay
    assert not channel.wanted
    channel.claim()
    assert channel.wanted


def test_an_owed_snapshot_is_taken_once_and_forgotten_when_the_session_stops_following() -> None:
    channel = channel_of()
    first, second, third = FakeSession(), FakeSession(), FakeSession()
    assert not channel.take_owed(first)
    channel.owe(first)
    assert channel.take_owed(first) and not channel.take_owed(first)
    channel.follow(second)
    channel.owe(second)
    channel.unfollow(second)
    assert not channel.take_owed(second)  # it left: nothing is owed to it any more
    channel.owe(first)
    channel.owe(third)
    assert set(channel.take_all_owed()) == {first, third}
    assert channel.take_all_owed() == [] and not channel.take_owed(first)


async def test_linger_drops_the_pair_once_unless_stopped() -> None:
    channel = channel_of()
    dropped: list[str] = []
    channel.linger(0.0, dropped.append)
    channel.linger(0.0, dropped.append)  # already lingering: no second timer
    await wait_until(lambda: dropped == ["ETH-USD"])
    await turn()
    assert dropped == ["ETH-USD"]

    kept = channel_of("BTC-USD")
    kept.linger(0.0, dropped.append)
    kept.stop_linger()  # wanted again before the timer fired
    await turn()  # a zero-delay timer would have run by now
    assert dropped == ["ETH-USD"]
    kept.stop_linger()  # nothing to stop: harmless


async def test_wait_live_returns_when_the_replica_goes_live_or_at_the_timeout() -> None:
    channel = channel_of()
    waiter = asyncio.ensure_future(channel.wait_live(timeout=60.0))
    await turn()
    assert not waiter.done()
    channel.wake_live_waiters()
    await asyncio.wait_for(waiter, 5.0)  # woken, long before its own timeout
    await asyncio.wait_for(channel.wait_live(timeout=0.0), 5.0)  # no wait at all
    await asyncio.wait_for(channel.wait_live(timeout=0.001), 5.0)  # not live: gives up at the timeout
    assert not channel.replica.live
    channel.wake_live_waiters()  # no waiter left behind by the ones that returned


async def test_wait_live_does_not_wait_for_a_replica_already_live() -> None:
    hub, _link, stream = make_hub()
    live_replica(hub, stream, at=20, recent_from=16)
    channel = hub.channels["ETH-USD"]
    await asyncio.wait_for(channel.wait_live(timeout=60.0), 5.0)


def test_an_audit_fix_is_recent_for_two_audit_periods() -> None:
    channel = channel_of()
    assert not channel.recently_fixed(100.0, audit_s=2.0)
    channel.found_behind(100.0)
    assert channel.recently_fixed(100.0, audit_s=2.0)
    assert channel.recently_fixed(103.9, audit_s=2.0)
    assert not channel.recently_fixed(104.0, audit_s=2.0)


# --- the hub, the channel's one owner ------------------------------------------------------------


async def test_the_hub_drops_a_channel_after_its_linger_and_unsubscribes_it() -> None:
    hub, link, _stream = make_hub()
    hub.cfg = dataclasses.replace(hub.cfg, linger_s=0.0)
    hub.claim(["ETH-USD"])
    await hub.want_pairs(["ETH-USD"])
    channel = hub.channels["ETH-USD"]
    assert channel.streaming and "ETH-USD" in link.wanted
    await wait_until(lambda: channel.replica.live)
    hub.unclaim(["ETH-USD"])
    await wait_until(lambda: "ETH-USD" not in hub.channels)
    assert "ETH-USD" not in link.wanted and hub.replica("ETH-USD") is None


async def test_a_pair_wanted_again_during_its_linger_keeps_its_channel_and_replica() -> None:
    hub, _link, stream = make_hub()
    hub.cfg = dataclasses.replace(hub.cfg, linger_s=0.0)
    replica = live_replica(hub, stream, at=20, recent_from=16)
    session = FakeSession()
    hub.open_session(session)
    hub.follow(session, "ETH-USD")
    hub.unclaim(["ETH-USD"])  # the subscribe is done: the follower keeps the pair wanted
    await turn()
    assert hub.channels["ETH-USD"].replica is replica
    hub.close_session(session)  # last follower gone: the linger starts …
    hub.claim(["ETH-USD"])  # … and a new subscribe stops it within the same turn
    await turn()
    assert hub.channels["ETH-USD"].replica is replica and replica.state is ReplicaState.LIVE
    hub.unclaim(["ETH-USD"])
    await wait_until(lambda: "ETH-USD" not in hub.channels)


async def test_owed_snapshots_go_out_the_moment_the_replica_is_live() -> None:
    hub, _link, _stream = make_hub()
    hub.claim(["ETH-USD"])
    session = FakeSession()
    hub.open_session(session)
    hub.follow(session, "ETH-USD")
    assert not hub.send_snapshot(session, "ETH-USD")  # not live yet: owed instead
    assert session.messages() == []
    await hub.want_pairs(["ETH-USD"])
    await wait_until(lambda: len(session.messages()) == 1)
    (snapshot,) = session.messages()
    assert snapshot.seq == 20 and not hub.take_owed(session, "ETH-USD")
    assert hub.channels["ETH-USD"].replica.local.seq == 20
