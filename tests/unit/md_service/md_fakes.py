"""The unit tests' stand-ins for md_service's Kafka source and Redis store.

They satisfy :class:`md_service.ports.MdSource` and :class:`md_service.ports.MdStore` (the
Protocols :class:`md_service.service.MdService` is typed against): mypy checks that where they
are passed to the service, and ``test_md_ports.py`` checks at run time that they have every
member of the Protocol with the same parameters as the real classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from md_service.claim_script import Claim
from md_service.intake import Loaded
from md_service.kafka_link import KafkaLink
from md_service.pair_stream import WindowOutput
from md_service.redis_store import Restored
from md_service.takeover import OwnerView
from md_service.window_script import PartitionWrite, SnapshotWrite, WindowResult


class ScriptedSource:
    """KafkaSource's calls, answered from a script; a link (and a consumer) when one is given."""

    def __init__(
        self,
        link: KafkaLink | None = None,
        found: list[list[int] | None] | None = None,
        consumer: object | None = None,
    ) -> None:
        if link is not None:
            self.link = link
        if consumer is not None:
            self.consumer = consumer  # read by the exporter's consumer lag (md_service.metrics)
        self.found = list(found or [])  # what partitions() answers, call by call
        self.committed: list[dict[int, int]] = []
        self.fetched: list[dict[int, int | None]] = []
        self.unfetched: list[int] = []
        self.rewound: list[int] = []
        self.closed = False

    def poll(self, timeout: float) -> list:
        return []

    def fetch(self, starts: Mapping[int, int | None]) -> None:
        self.fetched.append(dict(starts))

    def unfetch(self, partitions: list[int]) -> None:
        self.unfetched.extend(partitions)

    def rewind(self, partition: int) -> None:
        self.rewound.append(partition)

    def partitions(self) -> list[int] | None:
        return self.found.pop(0) if self.found else None

    def commit(self, offsets: dict[int, int]) -> None:
        self.committed.append(dict(offsets))

    def close(self) -> None:
        self.closed = True


class NotScripted(AssertionError):
    """A store call the test did not expect (not a ``redis.RedisError``: the service never retries it)."""


class ScriptedStore:
    """RedisStore's calls: every window written and counted (answered from ``results`` while any
    are left, else all taken), claims answered from ``claims``; the other calls are not scripted."""

    def __init__(self, results: list[WindowResult] | None = None, claims: list[Claim] | None = None) -> None:
        self.windows: list[tuple[list[int], list[str]]] = []
        self.results = list(results or [])
        self.claims = list(claims or [])
        self.claimed: list[tuple[str, list[int], bool]] = []
        self.snapshot_error: Exception | None = None  # raised by write_snapshots when set
        self.closed = False

    def load(self, pair: str) -> Loaded:
        raise NotScripted(f"load({pair!r})")

    def load_many(self, pairs: Sequence[str]) -> Restored:
        raise NotScripted(f"load_many({list(pairs)!r})")

    def claim(self, token: str, partitions: Sequence[int], force: bool = True) -> Claim:
        if not self.claims:
            raise NotScripted(f"claim({token!r}, {list(partitions)!r}, force={force})")
        self.claimed.append((token, list(partitions), force))
        return self.claims.pop(0)

    def take_over(self, token: str, expected: Mapping[int, str], dead_after_ms: int) -> Claim:
        raise NotScripted(f"take_over({token!r}, {dict(expected)!r}, {dead_after_ms})")

    def follow_point(self, partitions: Sequence[int]) -> tuple[Claim, Restored]:
        raise NotScripted(f"follow_point({list(partitions)!r})")

    def beat(self, tokens: Mapping[int, str]) -> dict[int, str]:
        raise NotScripted(f"beat({dict(tokens)!r})")

    def release(self, tokens: Mapping[int, str]) -> list[int]:
        raise NotScripted(f"release({dict(tokens)!r})")

    def claimed_partitions(self) -> list[int]:
        raise NotScripted("claimed_partitions()")

    def watch(self, partitions: Sequence[int]) -> dict[int, OwnerView]:
        raise NotScripted(f"watch({list(partitions)!r})")

    def write_window(self, parts: Sequence[PartitionWrite], outputs: Sequence[WindowOutput]) -> WindowResult:
        self.windows.append(([p.partition for p in parts], [o.pair for o in outputs]))
        if self.results:
            return self.results.pop(0)
        return WindowResult({}, {}, {p.partition: len(self.windows) for p in parts})

    def write_snapshots(self, writes: Sequence[SnapshotWrite]) -> set[str]:
        if self.snapshot_error is not None:
            raise self.snapshot_error
        return {w.pair for w in writes}

    def close(self) -> None:
        self.closed = True
