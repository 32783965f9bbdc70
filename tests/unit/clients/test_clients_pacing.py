"""The client paces its ops under the gateway's op limit, so a burst of resyncs never costs a 1008 close."""

from __future__ import annotations

import pytest

from clients import BookClient, ClientOptions
from clients.pacing import OpPacer
from mdcore.instruments import default_pairs
from tests.unit.clients.scripted_server import T, fast_options


def test_pacer_allows_a_burst_then_the_rate() -> None:
    pacer = OpPacer(rate=10.0, burst=3, now=0.0)
    assert [pacer.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert pacer.wait(0.0) == pytest.approx(0.1)
    assert pacer.wait(0.05) == pytest.approx(0.05) and not pacer.take(0.05)
    assert pacer.take(0.1) and not pacer.take(0.1)
    assert pacer.take(10.0) and pacer.take(10.0) and pacer.take(10.0)  # refills to the burst, no more
    assert not pacer.take(10.0)


def test_default_budget_stays_under_the_documented_gateway_limit() -> None:
    options = ClientOptions()
    assert options.op_rate <= 20 / 2 and options.op_burst <= 40 / 2  # docs/protocol.md 4.3: 20/s, 40


def within_budget(arrivals: list[float], rate: float, burst: int, slack: int = 2) -> bool:
    """Every prefix of the ops fits a token bucket that started full at the first op (plus slack)."""
    return all(n <= burst + rate * (at - arrivals[0]) + slack for n, at in enumerate(arrivals, 1))


async def test_watchdog_paces_many_overdue_resyncs(server) -> None:
    pairs = default_pairs(60)  # more waiting pairs than the gateway's burst of 40
    rate, burst = 60.0, 10
    options = fast_options(resync_retry=0.05, op_rate=rate, op_burst=burst)
    async with BookClient(server.url, pairs, options=options) as client:
        conn = await server.accept()
        op = await conn.expect("subscribe")
        await conn.subscribed(op)  # ... and no snapshot ever comes: every pair is overdue at once
        asked: set[str] = set()
        while asked != set(pairs):
            asked.add((await conn.expect("resync"))["pair"])
        offsets = [round(t - conn.arrivals[0], 3) for t in conn.arrivals]
        assert within_budget(conn.arrivals, rate, burst), offsets
        assert conn.arrivals[-1] - conn.arrivals[0] >= (len(conn.arrivals) - burst - 2) / rate
        assert client.stats.paced_ops > 0
        assert client.connected and client.stats.disconnects == 0


async def test_a_burst_of_runtime_requests_is_paced_in_order(server) -> None:
    rate, burst = 100.0, 5
    client = BookClient(server.url, ["BTC-USD"], options=fast_options(op_rate=rate, op_burst=burst))
    async with client:
        conn = await server.accept()
        await conn.expect("subscribe")
        extra = default_pairs(40)[8:38]
        for pair in extra:  # one subscribe call per pair: 30 ops
            await client.subscribe([pair])
        got = [(await conn.expect("subscribe", T))["pairs"] for _ in extra]
        assert got == [[pair] for pair in extra]
        assert within_budget(conn.arrivals, rate, burst)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (float("nan"), 1), (1.0, 0)])
def test_a_pacer_without_a_positive_rate_and_a_burst_is_refused(rate, burst) -> None:
    with pytest.raises(ValueError, match="op pacing needs"):
        OpPacer(rate, burst, 0.0)
