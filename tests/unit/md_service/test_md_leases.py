"""md_service.leases, the parts decided without Redis: the real service on scripted parts.

When a writer counts as gone is :class:`md_service.takeover.TakeoverWatch`'s (``test_md_takeover.py``);
here, what Leases does with the group's word, a beat's answer, a clean stop and a Redis that is
down. Claims, takeovers and follow points against a real Redis, and whole instances handing
partitions over, are ``tests/integration/test_md_store.py``'s, ``test_md_service_redis.py``'s
and ``test_md_failover.py``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import redis

from md_service.claim_script import Claim
from md_service.config import MdConfig
from md_service.pair_stream import PairStream
from md_service.service import MdService
from md_service.takeover import OwnerView, TakeoverWatch, released_marker
from mdcore.messages import StreamPosition
from tests.unit.md_service.md_fakes import ScriptedSource, ScriptedStore

CFG = MdConfig("", "", instance="md-test")
TOKEN = "md-test/aaaaaaaa"


class LeaseStore(ScriptedStore):
    """Beats, watches and releases answered from the test's script; every call recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: dict[int, str] = {}
        self.views: dict[int, OwnerView] = {}
        self.claimed_now: list[int] = []
        self.down = False
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise redis.ConnectionError("connection refused")

    def beat(self, tokens: Mapping[int, str]) -> dict[int, str]:
        self._call("beat")
        return {p: owner for p, owner in self.lost.items() if p in tokens}

    def watch(self, partitions: Sequence[int]) -> dict[int, OwnerView]:
        self._call("watch")
        return {p: v for p, v in self.views.items() if p in partitions}

    def claimed_partitions(self) -> list[int]:
        self._call("claimed_partitions")
        return list(self.claimed_now)

    def release(self, tokens: Mapping[int, str]) -> list[int]:
        self._call("release")
        return sorted(tokens)

    def take_over(self, token: str, expected: Mapping[int, str], dead_after_ms: int) -> Claim:
        self._call(f"take_over {dict(expected)}")
        return Claim({}, {})  # someone was faster: nothing claimed


def make(store: LeaseStore, source: ScriptedSource | None = None, cfg: MdConfig = CFG) -> MdService:
    scripted = source or ScriptedSource()
    return MdService(
        cfg, store, lambda on_assign, on_revoke: scripted, clock_ns=lambda: 1_700_000_000_000_000_000
    )


def test_a_revoked_partition_is_written_until_fenced_and_a_followed_one_is_let_go() -> None:
    source = ScriptedSource()
    service = make(LeaseStore(), source)
    service.ownership.own([0], TOKEN, assigned=True)
    service.ownership.follow(1, 5, assigned=True)
    service.leases.revoked([0, 1], lost=False)
    part = service.ownership.partitions[0]
    assert not part.assigned and not part.following and part.token == TOKEN  # still ours to write
    assert 1 not in service.ownership.partitions and source.unfetched == [1]
    assert service.counters.partitions_released == 2


def test_a_standby_keeps_following_what_the_group_moves() -> None:
    source = ScriptedSource()
    service = make(LeaseStore(), source, replace(CFG, standby=True))
    service.ownership.follow(1, 5, assigned=True)
    service.leases.revoked([1], lost=True)
    assert service.ownership.following_numbers() == [1] and source.unfetched == []


def test_a_clean_stop_releases_every_written_partition_and_never_adopts_it_back() -> None:
    store = LeaseStore()
    service = make(store)
    service.ownership.own([0, 2], TOKEN)
    service.ownership.follow(3, 0)
    service.leases.release_all()
    assert store.calls == ["release"] and service.ownership.partitions.keys() == {3}
    assert service.leases.released == {TOKEN} and service.counters.releases == 2
    # what we released is not a partition to adopt, though its writer (we) is "gone"; another
    # instance's release is
    service.leases.cold = TakeoverWatch(CFG.adopt_ms / 1000, release_grace_s=0.0, clock=lambda: 0.0)
    store.claimed_now = [0, 2, 5]
    store.views = {
        0: OwnerView(released_marker(TOKEN), None, 10_000),
        2: OwnerView(released_marker(TOKEN), None, 10_000),
        5: OwnerView(released_marker("md-other/1"), None, 10_000),
    }
    store.calls.clear()
    service.leases.tick(1_000.0)
    assert store.calls == ["beat", "claimed_partitions", "watch", "take_over {5: 'released/md-other/1'}"]


def test_a_release_redis_did_not_take_keeps_the_partitions() -> None:
    store = LeaseStore()
    store.down = True
    service = make(store)
    service.ownership.own([0], TOKEN)
    service.leases.release_all()
    assert service.ownership.owned_numbers() == [0] and service.leases.released == set()
    assert service.counters.redis_errors == 1 and service.counters.releases == 0


def test_nothing_to_release_asks_nothing() -> None:
    store = LeaseStore()
    make(store).leases.release_all()
    assert store.calls == []


def test_no_beat_while_redis_is_down_and_the_next_one_is_scheduled() -> None:
    store = LeaseStore()
    service = make(store)
    service.ownership.own([0], TOKEN)
    service.redis_down_since = 5.0
    service.leases.tick(100.0)
    assert store.calls == [] and service.leases.next_at == 100.0 + CFG.heartbeat_ms / 1000


def test_a_beat_that_finds_another_owner_fences_the_partition() -> None:
    store = LeaseStore()
    store.lost = {0: "md-other/1"}
    service = make(store)
    service.ownership.own([0], TOKEN, assigned=True)
    stream = PairStream("BTC-USD", "e1", stored=StreamPosition("e1", 0), partition=0)
    service.ownership.add_stream(stream)
    service.leases.tick(100.0)
    assert service.ownership.fenced_numbers() == [0] and service.counters.partitions_lost == 1
    assert "BTC-USD" in service.streams  # followed warm: its book is kept


def test_a_failed_beat_is_counted_and_changes_nothing() -> None:
    store = LeaseStore()
    store.down = True
    service = make(store)
    service.ownership.own([0], TOKEN)
    service.leases.tick(100.0)
    assert store.calls == ["beat"] and service.counters.redis_errors == 1
    assert service.ownership.owned_numbers() == [0]


def test_a_group_member_watches_every_partition_with_an_owner_it_does_not_write() -> None:
    store = LeaseStore()
    store.claimed_now = [0, 4, 6]
    source = ScriptedSource(found=[[0, 1, 2]])
    service = make(store, source)
    service.ownership.own([0], TOKEN)
    assert service.leases._candidates(100.0) == ([], [1, 2, 4, 6])
    assert store.calls == ["claimed_partitions"] and service.leases.claimed == [0, 4, 6]
    service.leases._candidates(101.0)  # within CLAIMED_EVERY_S: not read again
    assert store.calls == ["claimed_partitions"]


def test_a_standby_only_watches_what_it_follows() -> None:
    store = LeaseStore()
    service = make(store, cfg=replace(CFG, standby=True))
    service.ownership.follow(3, 0)
    assert service.leases._candidates(100.0) == ([3], []) and store.calls == []
