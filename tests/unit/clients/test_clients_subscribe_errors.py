"""Error answers to the client's subscribe: refused pairs go unsynced, are shown, raised, retried slowly."""

from __future__ import annotations

import asyncio

import pytest

from clients import Backoff, BookUpdate, ClientStats, SubscriptionRefusedError
from clients.book_set import BookSet
from clients.view import BookView
from mdcore.messages import Ack, ErrorMessage, Ping, Resync, StreamPosition, Subscribe
from tests.unit.clients.scripted_server import SourceBook, T, book_levels, fast_options, open_synced

SECOND = 1_000_000_000
NO_JITTER = Backoff(initial=30, maximum=600, jitter=0)


def make(pairs: tuple[str, ...]) -> BookSet:
    books = BookSet(ClientStats(), lambda update: None, refusal_backoff=NO_JITTER)
    books.add(pairs, now_ns=0)
    return books


def connect(books: BookSet, now_ns: int = 0) -> list[Subscribe]:
    """A new connection's subscribe requests, as the sender would take them."""
    books.begin_connection(now_ns)
    ops = books.take_ops()
    assert all(isinstance(op, Subscribe) for op in ops)
    return ops  # type: ignore[return-value]


def error(op: Subscribe, code: str = "unknown_pair") -> ErrorMessage:
    return ErrorMessage(code, f"{code} for request {op.id}", op.id)


def test_unknown_pair_splits_the_request_until_the_culprit_is_alone() -> None:
    books = make(("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD"))
    (op,) = connect(books)
    assert books.on_error(error(op), 1) is True
    halves = books.take_ops()
    assert [h.pairs for h in halves] == [("BTC-USD", "ETH-USD"), ("SOL-USD", "XRP-USD")]
    assert all(isinstance(h, Subscribe) and h.since == {} for h in halves)
    books.on_ack(Ack("subscribed", halves[0].pairs, halves[0].id))
    books.on_error(error(halves[1]), 2)
    quarters = books.take_ops()
    assert [q.pairs for q in quarters] == [("SOL-USD",), ("XRP-USD",)]
    books.on_ack(Ack("subscribed", quarters[0].pairs, quarters[0].id))
    books.on_error(error(quarters[1]), 3 * SECOND)
    assert books.take_ops() == []  # a lone unknown pair is not asked again at once
    assert books.refusals() == {"XRP-USD": books.state("XRP-USD").refusal}
    refusal = BookView(books.state("XRP-USD")).refusal
    assert refusal is not None and refusal.code == "unknown_pair"
    assert books.stats.subscribe_refusals == 3


def test_an_error_unsyncs_the_pairs_of_a_since_request() -> None:
    books = make(("BTC-USD", "ETH-USD"))
    src = SourceBook.with_depth(levels=3, epoch="e7", seq=12)
    books.on_snapshot(src.snapshot(), 0)
    (op,) = connect(books, 1)  # a reconnect: BTC asks to be recovered
    assert op.since == {"BTC-USD": StreamPosition("e7", 12)}
    books.on_error(error(op), 2)
    assert not books.state("BTC-USD").synced  # not subscribed now: its book is frozen
    assert [h.since for h in books.take_ops()] == [{}, {}]  # so the halves ask for snapshots


def test_refusals_other_than_unknown_pair_refuse_the_whole_request() -> None:
    books = make(("BTC-USD", "ETH-USD"))
    (op,) = connect(books)
    books.on_error(error(op, "too_many_pairs"), 1)
    assert books.take_ops() == []
    assert {p: r.code for p, r in books.refusals().items()} == {
        "BTC-USD": "too_many_pairs",
        "ETH-USD": "too_many_pairs",
    }
    assert books.on_error(ErrorMessage("bad_request", "not ours", 9999), 2) is False  # not a subscribe
    assert books.on_error(ErrorMessage("rate_limited", "slow down", None), 2) is False


def test_refused_pairs_are_retried_on_a_growing_delay_and_in_a_request_of_their_own() -> None:
    books = make(("BTC-USD", "ETH-USD"))
    connect(books)
    (op,) = books.subscribe_ops(0, ["ETH-USD"])
    books.on_error(error(op), 0)
    books.request_overdue(29 * SECOND)
    assert [type(o) for o in books.take_ops()] == [Resync]  # BTC's snapshot is overdue; ETH waits
    books.request_overdue(30 * SECOND)
    (retry,) = books.take_ops()
    assert isinstance(retry, Subscribe) and retry.pairs == ("ETH-USD",)
    books.on_error(error(retry), 31 * SECOND)
    books.request_overdue(90 * SECOND)
    assert [o for o in books.take_ops() if isinstance(o, Subscribe)] == []  # 60 s the second time
    books.request_overdue(91 * SECOND)
    assert [o.pairs for o in books.take_ops() if isinstance(o, Subscribe)] == [("ETH-USD",)]
    # A new connection asks for the refused pair apart, so it cannot sink the others' request.
    assert [o.pairs for o in connect(books, 92 * SECOND)] == [("BTC-USD",), ("ETH-USD",)]


def test_an_ack_clears_the_refusal() -> None:
    books = make(("ETH-USD",))
    (op,) = connect(books)
    books.on_error(error(op), 0)
    (again,) = connect(books, 1)
    books.on_ack(Ack("subscribed", again.pairs, again.id))
    assert books.refusals() == {}
    assert BookView(books.state("ETH-USD")).refusal is None


async def test_error_answer_after_a_reconnect_unsyncs_and_is_raised(server, source) -> None:
    eth = SourceBook.with_depth("ETH-USD", levels=5, epoch="x9", seq=40)
    updates: list[BookUpdate] = []
    client, conn = await open_synced(server, [source, eth], on_update=updates.append)
    async with client:
        conn.drop()
        conn2 = await server.accept()  # a gateway that no longer offers ETH-USD
        op = await conn2.expect("subscribe")
        assert set(op["since"]) == {"BTC-USD", "ETH-USD"}
        await conn2.send({"type": "error", "code": "unknown_pair", "message": "ETH-USD", "id": op["id"]})
        btc_op, eth_op = await conn2.expect("subscribe"), await conn2.expect("subscribe")
        assert (btc_op["pairs"], eth_op["pairs"]) == (["BTC-USD"], ["ETH-USD"])
        assert "since" not in btc_op  # unsynced by the refusal: a snapshot, not a replay
        await client.wait_for(lambda: not client.book("BTC-USD").synced, T)
        await conn2.subscribed(btc_op)
        await conn2.send(source.snapshot())
        await conn2.send({"type": "error", "code": "unknown_pair", "message": "ETH-USD", "id": eth_op["id"]})
        await client.wait_synced(["BTC-USD"], timeout=T)
        assert book_levels(client, "BTC-USD") == source.levels()

        view = client.book("ETH-USD")
        assert not view.synced and view.best_bid() is None  # never a silently frozen book
        assert view.refusal is not None and view.refusal.code == "unknown_pair"
        with pytest.raises(SubscriptionRefusedError, match=r"ETH-USD: unknown_pair") as caught:
            await client.wait_synced(timeout=T)
        assert caught.value.pairs == ("ETH-USD",) and caught.value.code == "unknown_pair"
        assert client.stats.subscribe_refusals == 2
        assert set(client.refused) == {"ETH-USD"}

        ping_id = client._books.next_id()  # nothing more is sent for ETH-USD: no resync loop
        await client._send_if_connected([Ping(ping_id)])
        assert (await conn2.expect("ping"))["id"] == ping_id


async def test_a_refused_pair_is_retried_slowly_and_recovers(server, source) -> None:
    eth = SourceBook.with_depth("ETH-USD", levels=3)
    options = fast_options(resync_retry=0.05, refusal_backoff=Backoff(initial=0.3, maximum=0.3, jitter=0))
    client, conn = await open_synced(server, [source], options=options)
    async with client:
        await client.subscribe(["ETH-USD"])
        first = await conn.expect("subscribe")
        too_many = {"type": "error", "code": "too_many_pairs", "message": "at most 1", "id": first["id"]}
        await conn.send(too_many)
        await client.wait_for(lambda: "ETH-USD" in client.refused, T)
        refused_at = asyncio.get_running_loop().time()
        while (second := await conn.next_op())["op"] != "subscribe":
            assert second == {"op": "resync", "pair": "ETH-USD", "id": second["id"]}  # sent before the error
        assert second["pairs"] == ["ETH-USD"]  # the watchdog ticks every 50 ms, but this waits 0.3 s
        arrived = dict(zip(map(id, conn.received), conn.arrivals, strict=True))
        assert arrived[id(second)] - arrived[id(first)] >= 0.3
        resyncs_after = [op for op in conn.received if op["op"] == "resync" and arrived[id(op)] > refused_at]
        assert resyncs_after == []  # a refused pair is not resynced in a loop
        await conn.subscribed(second)
        await conn.send(eth.snapshot())
        await client.wait_for(lambda: client.book("ETH-USD").synced, T)
        assert client.refused == {} and client.book("ETH-USD").refusal is None
        await client.wait_synced(timeout=T)  # nothing refused any more
