"""Session: one connection's traffic. Frames in are decoded and handed on, never raising.

The first tests call :meth:`Session.on_frame` and :meth:`Session.queue` directly (no
socket: the frame reader is pure); the rest run whole sessions through BookClient against
the scripted gateway on loopback.
"""

from __future__ import annotations

import pytest

from clients import BookClient, ClientError, ClientStats
from clients.book_set import BookSet
from clients.pings import PendingPings
from clients.session import Session
from mdcore.codec import encode_delta, pack_frame
from mdcore.messages import Ack, Ping, Pong, Subscribe
from tests.unit.clients.scripted_server import SourceBook, T, book_levels, encode, fast_options, open_synced


class Harness:
    """A Session over a real BookSet and PendingPings, with no connection behind it."""

    def __init__(self, pairs=("BTC-USD",)) -> None:
        self.stats = ClientStats()
        self.updates: list = []
        self.books = BookSet(self.stats, self.updates.append)
        self.books.add(pairs, now_ns=0)
        self.pings = PendingPings()
        self.notified = 0
        self.session = Session(
            None,  # type: ignore[arg-type]  # on_frame and queue never touch the connection
            self.books, self.pings, self.stats, fast_options(), clock=lambda: 123, notify=self.notify,
        )  # fmt: skip

    def notify(self) -> None:
        self.notified += 1

    def feed(self, *messages) -> None:
        self.session.on_frame(pack_frame([encode(m) for m in messages]))


def test_a_frame_is_counted_and_each_message_goes_to_its_book() -> None:
    h = Harness(("BTC-USD", "ETH-USD"))
    btc, eth = SourceBook.with_depth("BTC-USD", levels=3), SourceBook.with_depth("ETH-USD", levels=3)
    frame = pack_frame([encode(btc.snapshot()), encode(eth.snapshot()), encode(btc.bump())])
    h.session.on_frame(frame)
    assert (h.stats.frames, h.stats.bytes, h.stats.messages) == (1, len(frame), 3)
    assert [(u.pair, u.kind, u.received_ns) for u in h.updates] == [
        ("BTC-USD", "snapshot", 123),
        ("ETH-USD", "snapshot", 123),
        ("BTC-USD", "delta", 123),
    ]
    assert h.books.all_synced() and h.stats.bad_frames == 0


@pytest.mark.parametrize("frame", ["not json", b"\xff\xfe", "[1, 2]", '{"type": "delta"}', ""])
def test_a_frame_that_cannot_be_decoded_is_counted_never_raised(frame) -> None:
    h = Harness()
    h.session.on_frame(frame)
    assert h.stats.frames == 1 and h.stats.bad_frames == 1
    assert h.updates == []


def test_a_message_that_raises_is_counted_and_the_rest_of_the_frame_still_applies() -> None:
    h = Harness()
    src = SourceBook.with_depth(levels=3)
    # A pong whose id is a list cannot even be looked up (unhashable): its handler raises.
    h.session.on_frame(pack_frame([b'{"type":"pong","id":[1]}', encode(src.snapshot())]))
    assert h.stats.bad_frames == 1
    assert h.stats.messages == 2
    assert h.books.all_synced()  # the snapshot after it in the same frame still applied


def test_unknown_message_types_are_ignored() -> None:
    h = Harness()
    h.feed({"type": "news", "text": "hello"})
    assert h.stats.messages == 1
    assert h.stats.bad_frames == h.stats.errors == h.stats.unexpected == 0


def test_an_ack_that_says_recovered_is_counted() -> None:
    h = Harness()
    h.feed(Ack("subscribed", ("BTC-USD",), 1, True))
    h.feed(Ack("subscribed", ("BTC-USD",), 2, None))
    assert h.stats.recoveries == 1


async def test_a_pong_answers_the_waiting_ping() -> None:
    h = Harness()
    future = h.pings.expect(5)
    h.feed(Pong(4))
    assert not future.done()
    h.feed(Pong(5))
    assert future.done() and isinstance(future.result(), float)


async def test_an_error_for_a_ping_refuses_it_and_is_counted() -> None:
    h = Harness()
    future = h.pings.expect(5)
    h.feed({"type": "error", "code": "rate_limited", "message": "slow down", "id": 5})
    assert h.stats.errors == 1
    with pytest.raises(ClientError, match="rate_limited: slow down"):
        future.result()


def test_an_error_for_a_subscribe_goes_to_the_books_not_the_pings() -> None:
    h = Harness()
    h.books.begin_connection(0)
    subscribe = h.books.next_op(0)
    assert isinstance(subscribe, Subscribe)
    h.feed({"type": "error", "code": "too_many_pairs", "message": "no", "id": subscribe.id})
    assert h.stats.errors == 1 and h.stats.subscribe_refusals == 1
    assert h.books.refusals()["BTC-USD"].code == "too_many_pairs"


def test_queue_puts_ops_after_those_already_waiting() -> None:
    h = Harness()
    h.books.begin_connection(0)
    h.session.queue([Ping(77)])
    ops = h.books.take_ops()
    assert isinstance(ops[0], Subscribe) and ops[-1] == Ping(77)


# --- whole sessions through BookClient ---------------


async def test_array_frames_apply_every_message_in_order(server, source) -> None:
    eth = SourceBook.with_depth("ETH-USD", levels=5, epoch="x9", seq=7)
    client, conn = await open_synced(server, [source, eth])
    async with client:
        frames_before = client.stats.frames
        # One frame: two deltas of BTC (in order) and one of ETH, as a gateway packs a window.
        await conn.send(source.bump(), eth.bump(), source.bump())
        await client.wait_for(lambda: client.book("BTC-USD").seq == source.seq, T)
        await client.wait_for(lambda: client.book("ETH-USD").seq == eth.seq, T)
        assert client.stats.frames == frames_before + 1
        assert client.stats.deltas == 3
        assert book_levels(client, "BTC-USD") == source.levels()
        assert book_levels(client, "ETH-USD") == eth.levels()
        assert client.stats.gaps == 0


async def test_snapshot_and_deltas_in_one_array_frame(server, source) -> None:
    client = BookClient(server.url, ["BTC-USD"], options=fast_options())
    async with client:
        conn = await server.accept()
        await conn.expect("subscribe")
        snap = source.snapshot()
        await conn.send(snap, source.bump(), source.bump())
        await client.wait_for(lambda: client.book("BTC-USD").seq == source.seq, T)
        assert book_levels(client, "BTC-USD") == source.levels()


BAD_FRAMES = [
    "not json at all",
    "",
    "42",
    "[1, 2]",
    '{"type": "delta"}',
    '{"type": "delta", "pair": ["BTC-USD"], "epoch": "e1", "seq": 1, "ts": 1, "xts": 1,'
    ' "bids": [], "asks": [], "checksum": 0}',
    '{"type": "snapshot", "pair": "BTC-USD", "epoch": "e1", "seq": 1, "ts": 1,'
    ' "bids": "nope", "asks": [], "checksum": 0}',
    b"\xff\xfe binary garbage",
]


async def test_bad_frames_are_counted_not_fatal(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        for frame in BAD_FRAMES:
            await conn.send_raw(frame)
        await client.wait_for(lambda: client.stats.bad_frames == len(BAD_FRAMES), T)
        # Still the same connection, still synced, and the next good delta applies.
        await conn.send(source.bump())
        await client.wait_for(lambda: client.book("BTC-USD").seq == source.seq, T)
        assert book_levels(client, "BTC-USD") == source.levels()
        assert client.connected
        assert client.stats.connects == 1 and client.stats.disconnects == 0


@pytest.mark.parametrize("how", ["off-grid price", "seq not a number", "qty not a string"])
async def test_a_delta_for_a_followed_pair_that_cannot_be_applied_resyncs_it(server, source, how) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        good = source.bump()
        text = encode_delta(good).decode()
        price, qty = good.bids[0]
        bad = {
            "off-grid price": text.replace(f'"{price}"', '"12.345678901"'),
            "seq not a number": text.replace(f'"seq":{good.seq}', '"seq":"x"'),
            "qty not a string": text.replace(f'"{qty}"', "1.5"),
        }[how]
        assert bad != text
        await conn.send_raw(bad)
        op = await conn.expect("resync")
        assert op["pair"] == "BTC-USD"
        assert client.stats.bad_frames == 1
        await conn.send(source.snapshot())
        await client.wait_synced(timeout=T)
        assert book_levels(client, "BTC-USD") == source.levels()


async def test_messages_for_other_pairs_and_unknown_types_are_ignored(server, source) -> None:
    client, conn = await open_synced(server, [source])
    async with client:
        other = SourceBook.with_depth("SOL-USD", levels=3)
        await conn.send(other.snapshot(), other.bump(), {"type": "news", "text": "hello"})
        await conn.send({"type": "error", "code": "unknown_pair", "message": "no such pair", "id": 3})
        await client.wait_for(lambda: client.stats.errors == 1, T)
        assert client.stats.unexpected == 2
        assert client.stats.bad_frames == 0
        assert client.pairs == ("BTC-USD",)
