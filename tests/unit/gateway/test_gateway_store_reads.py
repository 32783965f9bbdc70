"""gateway.store_reads: the gateway's reads of md_service's streams, and when history reaches.

The rule (``history_answer``) is checked on its own; :class:`StoreReads` is checked against a
fake redis-py client that answers its scripts and pipelines from md_service's side in memory
(``MemoryStreams``), the keys it reads included. The same reads against a real Redis and a
Redis Cluster are the contract suite's (tests/contract/test_book_store_contract.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.memory_store import MemoryStreams
from gateway.store_reads import MAX_HISTORY_READ, READ_HISTORY_LUA, ReadsThrough, StoreReads, history_answer
from mdcore.codec import encode_snapshot
from mdcore.messages import StreamPosition
from mdcore.redis_layout import DELTA_FIELD, READ_BOOK_LUA, RedisLayout, StoredState
from tests.unit.gateway.md_service_free_fixtures import Stream

EPOCH = "1-abc"
STATE = StoredState(EPOCH, 20, 20, 9)
AFTER_17 = [(18, b"d18"), (19, b"d19"), (20, b"d20")]


@pytest.mark.parametrize(
    ("state", "epoch", "seq", "limit", "entries", "answer"),
    [
        (None, EPOCH, 17, 10, [], None),  # no stream
        (STATE, "0-old", 17, 10, AFTER_17, None),  # another epoch: load a book
        (STATE, EPOCH, 17, 10, AFTER_17, AFTER_17),  # reaches from 18 to where the stream is
        (STATE, EPOCH, 20, 10, [], []),  # already there: nothing to replay
        (STATE, EPOCH, 17, 10, [], None),  # behind, but history is gone
        (STATE, EPOCH, 15, 10, AFTER_17, None),  # history starts after 16: a hole
        (STATE, EPOCH, 17, 2, AFTER_17[:2], None),  # further behind than one read may go
        (STATE, EPOCH, 18, 2, AFTER_17[1:], AFTER_17[1:]),  # exactly the limit behind
    ],
)  # fmt: skip
def test_history_answers_only_when_it_reaches_from_the_next_seq_to_the_stream(
    state, epoch, seq, limit, entries, answer
) -> None:
    assert history_answer(state, epoch, seq, limit, entries) == answer


class FakeRedis:
    """The few redis-py calls :class:`StoreReads` makes, answered from ``MemoryStreams``."""

    def __init__(self, streams: MemoryStreams, layout: RedisLayout) -> None:
        self.streams = streams
        self.layout = layout
        self.calls: list[tuple[str, list[str], list[Any]]] = []

    def _pair(self, key: str) -> str:
        return key.rsplit(":", 1)[1]

    def register_script(self, lua: str):
        async def run(keys: list[str], args: list[Any] = ()) -> list[Any]:
            self.calls.append((lua, keys, list(args)))
            pair = self._pair(keys[0])
            if lua == READ_BOOK_LUA:
                assert keys == self.layout.book_keys(pair)
                return list(self.streams.read_book_reply(pair))
            assert lua == READ_HISTORY_LUA and keys == [
                self.layout.state_key(pair),
                self.layout.history_key(pair),
            ]
            flat = self.streams.read_book_reply(pair)[0]
            seq, count = args
            after = self.streams.history_after(pair, int(seq), int(count))
            return [flat, [[b"%d-0" % n, [b"x", b"1", DELTA_FIELD, raw]] for n, raw in after]]

        return run

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        assert transaction is False  # a cluster cannot run a transaction across slots
        return FakePipeline(self)


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.queued: list[Any] = []

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    def hmget(self, key: str, *fields: str) -> None:
        assert fields == ("epoch", "seq")
        state = self.redis.streams.state(self.redis._pair(key))
        self.queued.append([None, None] if state is None else [state.epoch.encode(), b"%d" % state.seq])

    def smembers(self, key: str) -> None:
        partition = int(key.split("{p", 1)[1].split("}", 1)[0])
        pairs = {p for p in self.redis.streams.pairs() if self.redis.layout.partition(p) == partition}
        self.queued.append({p.encode() for p in pairs})

    async def execute(self) -> list[Any]:
        return self.queued


def reads_of(history: int = 30) -> tuple[StoreReads, FakeRedis, Stream]:
    """md_service's streams of ETH-USD (snapshot at 9, deltas 10..20) and BTC-USD (at 3)."""
    streams = MemoryStreams(history=history)
    eth, btc = Stream("ETH-USD", 30), Stream("BTC-USD", 5, epoch="7-xyz")
    streams.write("ETH-USD", eth.epoch, 9, 9, b"", encode_snapshot(eth.book_at(9).to_snapshot()))
    for seq in range(10, 21):
        streams.write("ETH-USD", eth.epoch, seq, seq, eth.delta(seq))
    streams.write("BTC-USD", btc.epoch, 3, 3, b"", encode_snapshot(btc.book_at(3).to_snapshot()))
    layout = RedisLayout(partitions=4)
    redis = FakeRedis(streams, layout)
    return StoreReads(redis, layout), redis, eth


async def test_a_book_is_the_snapshot_plus_the_deltas_after_it_or_none_without_a_stream() -> None:
    reads, _redis, eth = reads_of()
    book = await reads.load_book("ETH-USD")
    assert book is not None and (book.epoch, book.seq) == (EPOCH, 20)
    assert book.to_snapshot().bids == eth.book_at(20).to_snapshot().bids
    assert await reads.load_book("SOL-USD") is None


async def test_history_is_read_with_its_state_in_one_script_and_bounded() -> None:
    reads, redis, eth = reads_of()
    assert reads.max_history_read == MAX_HISTORY_READ
    assert await reads.read_history("ETH-USD", EPOCH, 17) == [(n, eth.delta(n)) for n in (18, 19, 20)]
    (lua, _keys, args) = redis.calls[-1]
    assert lua == READ_HISTORY_LUA and args == [17, MAX_HISTORY_READ]
    assert await reads.read_history("ETH-USD", EPOCH, 20) == []
    assert await reads.read_history("ETH-USD", EPOCH, 5) is None  # before the history kept
    assert await reads.read_history("ETH-USD", "0-old", 17) is None
    assert await reads.read_history("SOL-USD", EPOCH, 0) is None
    reads.max_history_read = 2
    assert await reads.read_history("ETH-USD", EPOCH, 17) is None  # 3 behind: more than one read may go
    assert redis.calls[-1][2] == [17, 2]
    assert await reads.read_history("ETH-USD", EPOCH, 18) == [(19, eth.delta(19)), (20, eth.delta(20))]


async def test_positions_and_pairs_span_pairs_in_one_round_trip() -> None:
    reads, _redis, _eth = reads_of()
    positions = await reads.read_positions(["ETH-USD", "SOL-USD", "BTC-USD"])
    assert positions == {
        "ETH-USD": StreamPosition(EPOCH, 20),
        "SOL-USD": None,
        "BTC-USD": StreamPosition("7-xyz", 3),
    }
    assert await reads.known_pairs() == {"ETH-USD", "BTC-USD"}


async def test_a_link_reading_through_store_reads_answers_the_same() -> None:
    reads, _redis, _eth = reads_of()
    link = ReadsThrough()
    link.reads = reads
    assert (await link.load_book("ETH-USD")).seq == 20
    assert [seq for seq, _ in await link.read_history("ETH-USD", EPOCH, 18)] == [19, 20]
    assert await link.read_positions(["ETH-USD"]) == {"ETH-USD": StreamPosition(EPOCH, 20)}
    assert await link.known_pairs() == {"ETH-USD", "BTC-USD"}
