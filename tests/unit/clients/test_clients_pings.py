"""PendingPings: one future per ping id, timed from when the ping left, failed with the connection.

The first tests drive PendingPings alone on a clock the test moves; the last ones are the
BookClient.ping round trips through a scripted gateway that exercise it end to end.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from clients import ClientError, NotConnectedError
from clients import pings as pings_module
from clients.pings import PendingPings
from tests.unit.clients.scripted_server import T, open_synced


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(pings_module, "time", SimpleNamespace(perf_counter=fake.perf_counter))
    return fake


async def test_a_pong_resolves_its_ping_with_the_time_it_arrived(clock) -> None:
    pings = PendingPings()
    one, two = pings.expect(1), pings.expect(2)
    clock.now = 12.5
    pings.answered(2)
    assert two.done() and two.result() == 12.5
    assert not one.done()


async def test_the_round_trip_starts_when_the_ping_left_not_when_it_was_queued(clock) -> None:
    pings = PendingPings()
    pings.expect(7)
    clock.now = 11.0  # it waited for the op budget until now
    pings.sent(7)
    assert pings.forget(7, queued_at=10.0) == 11.0


async def test_a_ping_that_never_left_is_timed_from_when_it_was_queued(clock) -> None:
    pings = PendingPings()
    pings.expect(7)
    assert pings.forget(7, queued_at=10.0) == 10.0


async def test_sent_ignores_pings_nobody_awaits(clock) -> None:
    pings = PendingPings()
    pings.sent(7)  # e.g. a ping the caller gave up on before it left
    pings.expect(7)
    assert pings.forget(7, queued_at=3.0) == 3.0


async def test_a_forgotten_ping_is_no_longer_answered(clock) -> None:
    pings = PendingPings()
    future = pings.expect(1)
    pings.forget(1, queued_at=0.0)
    pings.answered(1)
    pings.refused(1, "rate_limited", "slow down")
    assert not future.done()


async def test_answers_for_unknown_or_already_answered_ids_are_ignored(clock) -> None:
    pings = PendingPings()
    future = pings.expect(1)
    pings.answered(99)
    pings.answered(None)
    pings.answered(1)
    clock.now = 20.0
    pings.answered(1)  # a duplicated pong
    pings.refused(1, "late", "error after the pong")
    assert future.result() == 10.0


async def test_an_error_answer_raises_in_the_waiting_ping() -> None:
    pings = PendingPings()
    future = pings.expect(3)
    pings.refused(3, "rate_limited", "slow down")
    with pytest.raises(ClientError, match="gateway refused ping: rate_limited: slow down"):
        await future


async def test_an_error_whose_id_is_not_an_int_refuses_no_ping() -> None:
    pings = PendingPings()
    future = pings.expect(3)
    pings.refused("3", "bad_request", "not ours")
    pings.refused(None, "bad_request", "no id")
    assert not future.done()


async def test_fail_all_raises_in_every_waiting_ping_and_forgets_them() -> None:
    pings = PendingPings()
    answered = pings.expect(1)
    pings.answered(1)
    waiting = [pings.expect(2), pings.expect(3)]
    lost = NotConnectedError("connection lost")
    pings.fail_all(lost)
    assert answered.exception() is None  # already done: left as it was
    for future in waiting:
        assert future.exception() is lost
    pings.answered(2)  # nothing left to answer; must not raise
    later = pings.expect(4)
    pings.fail_all(NotConnectedError("again"))
    assert isinstance(later.exception(), NotConnectedError)


# --- through BookClient.ping ------------------------


async def test_ping_round_trip(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        conn.auto_pong = True
        rtt = await client.ping(timeout=T)
        assert 0 <= rtt < T
        assert conn.received[-1]["op"] == "ping"


async def test_ping_answered_with_an_error_raises(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        pinging = asyncio.create_task(client.ping(timeout=T))
        op = await conn.expect("ping")
        await conn.send({"type": "error", "code": "rate_limited", "message": "slow down", "id": op["id"]})
        with pytest.raises(ClientError, match="rate_limited"):
            await pinging


async def test_ping_fails_when_the_connection_drops(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        pinging = asyncio.create_task(client.ping(timeout=T))
        await conn.expect("ping")
        conn.drop()
        with pytest.raises(NotConnectedError):
            await pinging
