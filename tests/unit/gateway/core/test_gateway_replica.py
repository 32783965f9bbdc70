"""PairReplica: the rule for every Redis message, driven by plain calls and fake readers."""

from __future__ import annotations

import pytest

from gateway.core.replica import PairReplica, ReplicaState
from mdcore.codec import decode_delta, decode_snapshot
from mdcore.errors import IntegrityError
from mdcore.local_book import LocalBook
from mdcore.messages import Delta
from tests.unit.gateway.md_service_free_fixtures import Stream

PAIR = "ETH-USD"


class Recorder:
    def __init__(self) -> None:
        self.fanned: list[int] = []
        self.lives: list[bool] = []
        self.events: list[str] = []

    def on_delta(self, replica: PairReplica, delta: Delta, raw: bytes) -> None:
        assert replica.local is not None and replica.local.seq == delta.seq
        assert decode_delta(raw) == delta  # the bytes to fan out are the delta applied
        self.fanned.append(delta.seq)
        self.events.append(f"delta {delta.seq}")

    def on_live(self, replica: PairReplica, reset: bool) -> None:
        self.lives.append(reset)
        assert replica.local is not None
        self.events.append(f"live {replica.local.seq} reset={reset}")


def make(stream: Stream, at_seq: int, recent: int = 200) -> tuple[PairReplica, Recorder]:
    rec = Recorder()
    replica = PairReplica(PAIR, rec.on_delta, rec.on_live, recent=recent)
    replica.local = stream.book_at(at_seq)
    replica.state = ReplicaState.LIVE
    return replica, rec


async def never(*_args: object) -> None:
    raise AssertionError("not expected")


def history_of(stream: Stream, last: int):
    async def history(pair: str, epoch: str, seq: int) -> list[tuple[int, bytes]]:
        assert pair == PAIR and epoch == stream.epoch
        return [(s, stream.delta(s)) for s in range(seq + 1, last + 1)]

    return history


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

    await replica.catch_up(history_of(stream, 5), never)
    assert rec.fanned == [3, 4, 5, 6] and rec.lives == [False]
    assert replica.live and replica.local is not None and replica.local.book == stream.book_at(6).book
    assert replica.history_fills == 1 and replica.not_live_since is None


async def test_history_that_no_longer_reaches_means_full_reload_and_snapshots_first() -> None:
    stream = Stream(PAIR, windows=8)
    replica, rec = make(stream, 2)
    assert replica.offer(stream.delta(7)) is True

    async def history(*_args: object) -> None:
        return None

    async def load(pair: str) -> LocalBook:
        return stream.book_at(6)

    await replica.catch_up(history, load)
    # subscribers are told with a snapshot at 6 *before* delta 7 is fanned out
    assert rec.events == ["live 6 reset=True", "delta 7"]
    assert replica.local is not None and replica.local.seq == 7 and replica.reloads == 1


async def test_a_new_epoch_is_a_gap_never_a_stale_message() -> None:
    stream, other = Stream(PAIR, windows=3), Stream(PAIR, windows=3, epoch="2-new")
    replica, _ = make(stream, 3)
    assert replica.offer(other.delta(1)) is True


async def test_first_delta_before_any_stream_loads_the_book() -> None:
    stream = Stream(PAIR, windows=2)
    rec = Recorder()
    replica = PairReplica(PAIR, rec.on_delta, rec.on_live)

    async def nothing(pair: str) -> None:
        return None

    await replica.catch_up(never, nothing)  # md_service has not published the pair yet
    assert not replica.live and replica.state is ReplicaState.NO_DATA
    assert replica.offer(stream.delta(1)) is True  # the first delta must trigger a load

    async def load(pair: str) -> LocalBook:
        return stream.book_at(1)

    await replica.catch_up(never, load)
    assert replica.live and rec.lives == [True] and replica.local is not None and replica.local.seq == 1


async def test_a_gap_inside_the_buffer_after_a_reload_keeps_the_replica_catching_up() -> None:
    stream = Stream(PAIR, windows=9)
    replica, rec = make(stream, 1)
    replica.offer(stream.delta(5))  # gap: 2..4 missing
    replica.offer(stream.delta(6))
    replica.offer(stream.delta(9))  # and 7, 8 lost as well

    async def no_history(*_args: object) -> None:
        return None

    async def load(pair: str) -> LocalBook:
        return stream.book_at(4)

    await replica.catch_up(no_history, load)
    assert rec.events == ["live 4 reset=True", "delta 5", "delta 6"]
    assert replica.needs_catch_up and not replica.live  # 9 waits for 7 and 8
    await replica.catch_up(history_of(stream, 8), never)
    assert rec.fanned == [5, 6, 7, 8, 9] and replica.live


async def test_recent_deltas_are_kept_for_recovery_and_cleared_by_a_reload() -> None:
    stream = Stream(PAIR, windows=8)
    replica, _ = make(stream, 0, recent=3)
    for seq in range(1, 6):
        replica.offer(stream.delta(seq))
    assert [s for s, _ in replica.recent] == [3, 4, 5]
    assert replica.replay_after(3) == [(4, stream.delta(4)), (5, stream.delta(5))]

    async def load(pair: str) -> LocalBook:
        return stream.book_at(7)

    replica.offer(stream.delta(7))
    await replica.catch_up(lambda *a: _none(), load)
    assert [s for s, _ in replica.recent] == []  # deltas before a reload may not connect to its book


async def _none() -> None:
    return None


def test_snapshot_is_verified_encoded_once_and_refused_if_the_book_is_wrong() -> None:
    stream = Stream(PAIR, windows=4)
    replica, _ = make(stream, 2)
    first = replica.snapshot_bytes()
    assert replica.snapshot_bytes() is first  # cached per seq
    snap = decode_snapshot(first)
    assert (snap.epoch, snap.seq) == (stream.epoch, 2)
    assert replica.offer(stream.delta(3)) is False
    assert decode_snapshot(replica.snapshot_bytes()).seq == 3
    assert replica.local is not None
    replica.local.book.set_level("b", 1, 1)  # corrupt the book: a snapshot must not go out
    replica.offer(stream.delta(4))
    with pytest.raises(IntegrityError):
        replica.snapshot_bytes()


def test_verified_book_is_the_live_book_only_while_its_checksum_holds() -> None:
    stream = Stream(PAIR, windows=3)
    replica, _ = make(stream, 2)
    assert replica.verified_book() is replica.local
    assert replica.local is not None
    replica.local.book.set_level("a", 999_999, 1)  # a replica bug: the book no longer matches
    replica.offer(stream.delta(3))
    assert replica.verified_book() is None
    replica.state = ReplicaState.LOADING
    assert replica.verified_book() is None


async def test_a_history_with_a_hole_is_not_applied_the_book_is_reloaded_instead() -> None:
    stream = Stream(PAIR, windows=8)
    replica, rec = make(stream, 2)
    replica.offer(stream.delta(8))  # a jump: catch up

    async def holed(pair: str, epoch: str, seq: int) -> list[tuple[int, bytes]]:
        return [(s, stream.delta(s)) for s in (3, 4, 6, 7)]  # 5 is missing

    async def load(pair: str) -> LocalBook:
        return stream.book_at(7)

    await replica.catch_up(holed, load)
    assert replica.reloads == 1 and replica.live and replica.local is not None
    assert replica.local.seq == 8  # reloaded at 7, then the buffered 8
    assert 6 not in rec.fanned and rec.fanned[-1] == 8  # nothing applied across the hole
