"""The real store and source and the unit tests' fakes are all what MdService needs of them.

:mod:`md_service.ports` states that need (:class:`MdStore`, :class:`MdSource`); the service and
its helpers are typed against it. A fake that lost a member, or kept an old signature, would let
the unit tests pass against a store or source that no longer exists: this fails first. (mypy
checks the same where the fakes are passed in, and through the two assignments below, but it
is not part of CI.)
"""

from __future__ import annotations

import pytest

from md_service.kafka_source import KafkaSource
from md_service.ports import MdSource, MdStore
from md_service.redis_store import RedisStore
from tests.protocol_check import parameters, protocol_members
from tests.unit.md_service.md_fakes import NotScripted, ScriptedSource, ScriptedStore

STORE: MdStore = ScriptedStore()  # checked by mypy
SOURCE: MdSource = ScriptedSource()  # checked by mypy


def _real(store: RedisStore, source: KafkaSource) -> tuple[MdStore, MdSource]:
    return store, source  # the real classes satisfy the Protocols: checked by mypy


CASES = [
    (MdStore, RedisStore, None),
    (MdStore, ScriptedStore, ScriptedStore),
    (MdSource, KafkaSource, None),
    (MdSource, ScriptedSource, ScriptedSource),
]


@pytest.mark.parametrize(("proto", "implementation", "fake"), CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_every_member_of_the_protocol_exists_with_the_same_signature(
    proto: type, implementation: type, fake: type | None
) -> None:
    probe = fake() if fake is not None else implementation  # the real ones need Redis/Kafka to build
    members = protocol_members(proto)
    assert members, f"{proto.__name__} declares nothing"
    for name, declared in members.items():
        assert hasattr(probe, name), f"{implementation.__name__} has no {name!r}"
        if callable(declared) and not isinstance(declared, property):
            assert parameters(getattr(implementation, name)) == parameters(declared), name


def test_the_protocols_name_every_call_the_service_makes_of_its_store_and_source() -> None:
    # The members the service and its helpers call (service, window_writes, leases, intake).
    assert set(protocol_members(MdStore)) == {
        "load", "load_many", "claim", "take_over", "follow_point", "beat", "release",
        "claimed_partitions", "watch", "write_window", "write_snapshots", "close",
    }  # fmt: skip
    assert set(protocol_members(MdSource)) == {
        "poll",
        "fetch",
        "unfetch",
        "rewind",
        "partitions",
        "commit",
        "close",
    }


def test_the_scripted_store_refuses_a_call_no_test_scripted() -> None:
    store = ScriptedStore()
    with pytest.raises(NotScripted, match="claim"):
        store.claim("md-test/aaaaaaaa", [0])
    with pytest.raises(NotScripted, match="beat"):
        store.beat({0: "md-test/aaaaaaaa"})
    assert store.write_snapshots([]) == set() and store.windows == []


def test_the_scripted_source_records_what_the_service_asked() -> None:
    source = ScriptedSource(found=[None, [0, 1]])
    source.fetch({0: 5, 1: None})
    source.unfetch([1])
    source.rewind(0)
    source.commit({0: 7})
    source.close()
    assert source.fetched == [{0: 5, 1: None}] and source.unfetched == [1] and source.rewound == [0]
    assert source.committed == [{0: 7}] and source.closed
    assert source.partitions() is None and source.partitions() == [0, 1] and source.partitions() is None
    assert not hasattr(source, "link") and not hasattr(source, "consumer")  # unknown link, no lag
