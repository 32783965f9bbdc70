"""gateway.dialect_port: the hub as a protocol dialect sees it.

A dialect's want is a claim (the replica lives while it is wanted), it is told every applied
delta and every book reset of the pairs it wants, and of no other pair; a failed book read
is its ``BookUnavailableError``. On the in-memory store, with a dialect that records its calls.
"""

from __future__ import annotations

import dataclasses

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.binance.dialect import BookUnavailableError
from gateway.dialect_port import HubDialectPort
from mdcore.codec import encode_snapshot
from mdcore.errors import IntegrityError
from mdcore.local_book import LocalBook
from mdcore.messages import Delta
from tests.unit.gateway.gateway_fakes import live_replica, make_hub, turn, wait_until
from tests.unit.gateway.md_service_free_fixtures import Stream


class RecordingDialect:
    def __init__(self) -> None:
        self.deltas: list[tuple[str, Delta]] = []
        self.resets: list[tuple[str, LocalBook]] = []

    def on_delta(self, pair: str, delta: Delta) -> None:
        self.deltas.append((pair, delta))

    def on_reset(self, pair: str, local: LocalBook) -> None:
        self.resets.append((pair, local))


def port_on_hub(**settings: object):
    hub, link, stream = make_hub()
    if settings:
        hub.cfg = dataclasses.replace(hub.cfg, **settings)
    port = HubDialectPort(hub)
    dialect = port.dialect = RecordingDialect()  # type: ignore[assignment]
    return hub, link, stream, port, dialect


async def test_a_wanted_pair_gets_a_live_verified_book_and_every_applied_delta_decoded() -> None:
    hub, link, stream, port, dialect = port_on_hub()
    assert port in hub.listeners
    assert port.live_book("ETH-USD") is None  # no replica yet
    await port.want("ETH-USD")
    assert "ETH-USD" in hub.channels and "ETH-USD" in link.wanted
    await wait_until(lambda: port.live_book("ETH-USD") is not None)
    book = port.live_book("ETH-USD")
    got, want = book.to_snapshot(), stream.book_at(20).to_snapshot()
    assert (got.seq, got.bids, got.asks) == (20, want.bids, want.asks)
    hub.on_message("ETH-USD", stream.delta(21))
    hub.on_message("ETH-USD", stream.delta(21))  # old: dropped by the replica, not told
    hub.on_message("ETH-USD", stream.delta(22))
    assert [(pair, d.seq) for pair, d in dialect.deltas] == [("ETH-USD", 21), ("ETH-USD", 22)]
    assert all(isinstance(d, Delta) for _, d in dialect.deltas)
    assert port.live_book("ETH-USD").seq == 22


async def test_pairs_the_dialect_does_not_want_are_not_told() -> None:
    hub, _link, stream, port, dialect = port_on_hub()
    live_replica(hub, stream, at=20, recent_from=16)  # followed natively, not by the dialect
    hub.on_message("ETH-USD", stream.delta(21))
    assert dialect.deltas == [] and hub.channels["ETH-USD"].replica.local.seq == 21
    port.dialect = None  # no dialect attached: the port passes nothing on, and does not fail
    await port.want("ETH-USD")
    hub.on_message("ETH-USD", stream.delta(22))
    assert dialect.deltas == []


async def test_the_claim_lasts_until_the_last_unwant_and_extra_unwants_release_nothing() -> None:
    hub, _link, stream, port, dialect = port_on_hub(linger_s=0.0)
    await port.want("ETH-USD")
    await port.want("ETH-USD")  # two of the dialect's connections want it
    await wait_until(lambda: port.live_book("ETH-USD") is not None)
    port.unwant("ETH-USD")
    await turn()
    assert "ETH-USD" in hub.channels
    hub.on_message("ETH-USD", stream.delta(21))
    assert [d.seq for _, d in dialect.deltas] == [21]
    port.unwant("ETH-USD")
    await wait_until(lambda: "ETH-USD" not in hub.channels)  # no claim left: dropped after the linger

    live_replica(hub, stream, at=21, recent_from=17)  # a subscribe in progress claims the pair
    port.unwant("ETH-USD")  # the dialect holds no claim: it must not release the subscribe's
    await turn()
    assert hub.channels["ETH-USD"].wanted
    hub.on_message("ETH-USD", stream.delta(22))
    assert [d.seq for _, d in dialect.deltas] == [21]  # no longer wanted by the dialect


async def test_a_reload_of_a_wanted_pair_resets_the_dialects_book() -> None:
    _hub, link, _stream, port, dialect = port_on_hub()
    await port.want("ETH-USD")
    await wait_until(lambda: port.live_book("ETH-USD") is not None)
    dialect.resets.clear()  # (the first load is a reset too: the dialect may have had a book)
    fresh = Stream("ETH-USD", 5, epoch="2-def")  # md_service restarted the pair: a new epoch
    link.streams.write("ETH-USD", fresh.epoch, 0, 0, b"", encode_snapshot(fresh.book_at(0).to_snapshot()))
    link.streams.write("ETH-USD", fresh.epoch, 1, 1, fresh.delta(1))
    await wait_until(lambda: dialect.resets != [])
    ((pair, local),) = dialect.resets
    assert (pair, local.epoch, local.seq) == ("ETH-USD", "2-def", 1)
    assert port.live_book("ETH-USD").epoch == "2-def"


async def test_offered_pairs_are_the_hubs() -> None:
    hub, _link, _stream, port, _dialect = port_on_hub()
    assert await port.offered_pairs() == await hub.offered_pairs() == {"ETH-USD"}


@pytest.mark.parametrize(
    "error", [RedisConnectionError("down"), OSError("reset"), IntegrityError("ETH-USD", "bad book")]
)
async def test_a_failed_book_read_is_book_unavailable(error: Exception) -> None:
    _hub, link, _stream, port, _dialect = port_on_hub()
    assert (await port.load_book("ETH-USD")).seq == 20
    assert await port.load_book("BTC-USD") is None  # no stream

    async def failing(pair: str) -> LocalBook | None:
        raise error

    link.load_book = failing  # type: ignore[method-assign]
    with pytest.raises(BookUnavailableError, match=str(error)):
        await port.load_book("ETH-USD")
