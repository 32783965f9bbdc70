"""What the md_service loop needs of its Redis store and of its Kafka source: typing only.

:class:`md_service.service.MdService` and the helpers that work on its state
(:class:`md_service.window_writes.WindowWrites`, :class:`md_service.leases.Leases`,
:class:`md_service.intake.Intake` through its ``Rewinder``) are typed against these
Protocols, not against :class:`md_service.redis_store.RedisStore` and
:class:`md_service.kafka_source.KafkaSource`. The real classes satisfy them, and so do the
unit tests' fakes; ``tests/unit/md_service/test_md_ports.py`` holds both to the same members
and parameters at run time, so a fake cannot drift from the class it stands in for.

Nothing here runs: changing a Protocol changes no behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from confluent_kafka import Message

    from md_service.claim_script import Claim
    from md_service.intake import Loaded
    from md_service.pair_stream import WindowOutput
    from md_service.redis_store import Restored
    from md_service.takeover import OwnerView
    from md_service.window_script import PartitionWrite, SnapshotWrite, WindowResult


class MdStore(Protocol):
    """md_service's Redis: claims and leases of partitions, pair streams read, windows written.

    Every call may raise ``redis.RedisError``; the service retries or counts it.
    """

    def load(self, pair: str) -> Loaded:
        """The pair's stored stream (intake, a pair met for the first time)."""
        ...

    def load_many(self, pairs: Sequence[str]) -> Restored:
        """Many pairs' stored streams at once (a claimed partition restored cold)."""
        ...

    def claim(self, token: str, partitions: Sequence[int], force: bool = True) -> Claim:
        """Own ``partitions`` under ``token`` (``force=False``: only those nobody owns)."""
        ...

    def take_over(self, token: str, expected: Mapping[int, str], dead_after_ms: int) -> Claim:
        """Own each partition whose owner is still the expected one and gone long enough."""
        ...

    def follow_point(self, partitions: Sequence[int]) -> tuple[Claim, Restored]:
        """Where following ``partitions`` starts (a standby)."""
        ...

    def beat(self, tokens: Mapping[int, str]) -> dict[int, str]:
        """Heartbeat of the partitions owned under ``tokens``; the others' owners."""
        ...

    def release(self, tokens: Mapping[int, str]) -> list[int]:
        """Give the partitions owned under ``tokens`` away (a clean stop)."""
        ...

    def claimed_partitions(self) -> list[int]:
        """Every partition that has an owner in Redis."""
        ...

    def watch(self, partitions: Sequence[int]) -> dict[int, OwnerView]:
        """Owner, last beat and Redis' clock of each partition."""
        ...

    def write_window(self, parts: Sequence[PartitionWrite], outputs: Sequence[WindowOutput]) -> WindowResult:
        """Write one window, fenced, one atomic step per partition."""
        ...

    def write_snapshots(self, writes: Sequence[SnapshotWrite]) -> set[str]:
        """Store periodic snapshots (fenced); the pairs whose snapshot was stored."""
        ...

    def close(self) -> None: ...


class MdSource(Protocol):
    """md_service's Kafka: the partitions it reads, from where it says.

    A source may also have a ``link`` (:class:`md_service.kafka_link.KafkaLink`) and a
    ``consumer``; the service and its exporter look them up with ``getattr`` (a source
    without them reports the Kafka link as unknown), so they are not part of this Protocol.
    """

    def poll(self, timeout: float) -> list[Message]:
        """The next messages (errors included) within ``timeout`` seconds."""
        ...

    def fetch(self, starts: Mapping[int, int | None]) -> None:
        """Read each partition from its offset (None: its start)."""
        ...

    def unfetch(self, partitions: list[int]) -> None:
        """Stop reading ``partitions``."""
        ...

    def rewind(self, partition: int) -> None:
        """Read ``partition`` again from its start (:class:`md_service.intake.Rewinder`)."""
        ...

    def partitions(self) -> list[int] | None:
        """The topic's partitions (None until known)."""
        ...

    def commit(self, offsets: dict[int, int]) -> None:
        """How far the written windows reach (advisory: lag monitoring)."""
        ...

    def close(self) -> None: ...
