"""PairReplica: the rule for every Redis message, driven by plain calls and fake readers."""

from __future__ import annotations

from md_service_free_fixtures import Stream

from gateway.replica import PairReplica, ReplicaState
from mdcore.local_book import LocalBook

PAIR = "ETH-USD"


class Recorder:
    def __init__(self) -> None:
        self.fanned: list[int] = []
        self.resets = 0

    def on_delta(self, replica: PairReplica, raw: bytes) -> None:
        assert replica.local is not None
        self.fanned.append(replica.local.seq)

    def on_reset(self, replica: PairReplica) -> None:
        self.resets += 1


def make(stream: Stream, at_seq: int) -> tuple[PairReplica, Recorder]:
    rec = Recorder()
    replica = PairReplica(PAIR, rec.on_delta, rec.on_reset)
    replica.local = stream.book_at(at_seq)
    replica.state = ReplicaState.LIVE
    return replica, rec


async def never(*_args: object) -> None:
    raise AssertionError("not expected")


async def test_next_applies_stale_drops_gap_asks_for_catch_up() -> None:
    stream = Stream(PAIR, windows=6)
    replica, rec = make(stream, 2)
    assert replica.offer(stream.delta(3)) is False
    assert replica.offer(stream.delta(3)) is False  # duplicate
    assert replica.offer(stream.delta(2)) is False  # old
    assert rec.fanned == [3]
    assert replica.offer(stream.delta(5)) is True  # 4 is missing
    assert replica.state is ReplicaState.LOADING and replica.gaps == 1
    assert replica.offer(stream.delta(6)) is True  # buffered while loading

    async def history(pair: str, epoch: str, seq: int) -> list[bytes] | None:
        assert (pair, seq) == (PAIR, 3)
        return [stream.delta(4), stream.delta(5)]

    await replica.catch_up(history, never)
    assert rec.fanned == [3, 4, 5, 6] and rec.resets == 0
    assert replica.live and replica.local is not None and replica.local.book == stream.book_at(6).book


async def test_history_that_no_longer_reaches_means_full_reload_and_snapshots() -> None:
    stream = Stream(PAIR, windows=8)
    replica, rec = make(stream, 2)
    assert replica.offer(stream.delta(7)) is True

    async def history(*_args: object) -> None:
        return None

    async def load(pair: str) -> LocalBook:
        return stream.book_at(6)

    await replica.catch_up(history, load)
    assert rec.resets == 1  # subscribers are told with a snapshot, not silently skipped
    assert rec.fanned == [7] and replica.local is not None and replica.local.seq == 7


async def test_a_new_epoch_is_a_gap_never_a_stale_message() -> None:
    stream, other = Stream(PAIR, windows=3), Stream(PAIR, windows=3, epoch="2-new")
    replica, _ = make(stream, 3)
    assert replica.offer(other.delta(1)) is True


async def test_first_delta_before_any_stream_loads_the_book() -> None:
    stream = Stream(PAIR, windows=2)
    rec = Recorder()
    replica = PairReplica(PAIR, rec.on_delta, rec.on_reset)

    async def nothing(pair: str) -> None:
        return None

    await replica.catch_up(never, nothing)  # md_service has not published the pair yet
    assert not replica.live
    assert replica.offer(stream.delta(1)) is True  # the first delta must trigger a load

    async def load(pair: str) -> LocalBook:
        return stream.book_at(1)

    await replica.catch_up(never, load)
    assert replica.live and rec.resets == 1 and replica.local is not None and replica.local.seq == 1
