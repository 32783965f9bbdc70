"""What this instance reads: its Kafka partitions (with their Redis owner tokens) and pair streams.

Pure bookkeeping, no I/O: the service asks it which partitions a window writes, records
what Redis accepted, and drops a partition's streams when the partition goes away. A
partition's ``position`` is the next offset to consume (after the last message handled);
``written`` the offset stored in Redis with the last accepted window.

A partition is either *written* (this instance holds its owner token) or *followed*: read
and applied to warm books, but not written, because another instance writes it (a standby's
partitions, or one another instance took from us). ``assigned`` says whether the consumer
group gave it to us; an instance keeps writing a partition the group moved elsewhere until
the new owner's claim fences it, so a rebalance never leaves a partition unwritten.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from md_service.pair_stream import PairStream, WindowOutput
from md_service.window_script import PartitionWrite
from mdcore.messages import StreamPosition


@dataclass
class OwnedPartition:
    number: int
    token: str  # our owner token in Redis; "" while following
    position: int | None = None  # next offset to consume; None until the first message
    written: int | None = None  # offset Redis stores for it after our last accepted window
    following: bool = False  # read and applied, never written: another instance writes it
    fenced: bool = False  # following because another instance took it from us
    assigned: bool = False  # the consumer group gave it to this instance
    cold: bool = False  # (following) our books cannot continue the stored streams: take over cold
    rewound: bool = False  # read again from its start once in this assignment (to rebuild a book)
    behind: bool = False  # Redis lost writes of it (md_service.write_marks): restored pairs get new epochs
    pairs: set[str] = field(default_factory=set)


ADOPTED = "a"  # token kind of a partition a group member writes without the group giving it


def new_token(instance: str, kind: str = "") -> str:
    """An owner token: unique per claim, readable in Redis (which instance holds what, and why).

    ``kind`` is empty when the consumer group gave the partition, ``a`` (:data:`ADOPTED`) when
    a group member took it over without that, ``s`` when a standby took it over.
    """
    return f"{instance}/{kind}{uuid.uuid4().hex[:8]}"


def token_kind(token: str) -> str:
    """The ``kind`` a token was made with (see :func:`new_token`)."""
    return token.rpartition("/")[2][:-8]


class Ownership:
    """Partitions and streams of one instance."""

    def __init__(self) -> None:
        self.partitions: dict[int, OwnedPartition] = {}
        self.streams: dict[str, PairStream] = {}
        self.replacing: dict[
            str, StreamPosition
        ] = {}  # pairs whose unusable stored stream a new epoch replaces

    def own(self, numbers: Iterable[int], token: str, assigned: bool = True) -> None:
        """Write ``numbers`` from scratch under ``token`` (their streams are restored next)."""
        for p in numbers:
            self.drop(p)
            self.partitions[p] = OwnedPartition(p, token, assigned=assigned)

    def follow(self, number: int, position: int | None, assigned: bool = False) -> OwnedPartition:
        """Read ``number`` from ``position`` without writing it (its streams are added next)."""
        self.drop(number)
        part = self.partitions[number] = OwnedPartition(
            number, "", position=position, following=True, assigned=assigned
        )
        return part

    def add_stream(self, stream: PairStream) -> None:
        self.streams[stream.pair] = stream
        part = self.partitions.get(stream.partition)
        if part is not None:
            part.pairs.add(stream.pair)

    def drop(self, number: int) -> OwnedPartition | None:
        """Forget a partition and every stream in it."""
        part = self.partitions.pop(number, None)
        if part is not None:
            for pair in part.pairs:
                self.streams.pop(pair, None)
                self.replacing.pop(pair, None)
        return part

    def mark_fenced(self, number: int) -> None:
        """Another instance writes the partition now: keep reading it (warm books), write nothing."""
        part = self.partitions.get(number)
        if part is not None:
            part.following = part.fenced = True
            part.token = ""

    def writes_for(
        self, outputs: list[WindowOutput], every: bool, among: Collection[int] | None = None
    ) -> list[PartitionWrite]:
        """Partitions a window write names: those with outputs or a new position (all if ``every``).

        ``among`` limits it to the partitions whose windows were closed.
        """
        touched = {out.partition for out in outputs}
        writes = []
        for part in self.partitions.values():
            if part.following or (among is not None and part.number not in among):
                continue
            moved = part.position is not None and part.position != part.written
            if every or moved or part.number in touched:
                writes.append(PartitionWrite(part.number, part.token, part.position if moved else None))
        return writes

    def accepted(self, writes: list[PartitionWrite], refused_partitions: set[int]) -> dict[int, int]:
        """Record the offsets Redis stored; returns them (partition -> offset) for the group commit."""
        stored = {}
        for write in writes:
            part = self.partitions.get(write.partition)
            if part is None or write.offset is None or write.partition in refused_partitions:
                continue
            part.written = write.offset
            stored[write.partition] = write.offset
        return stored

    def tokens(self) -> dict[int, str]:
        """Partition -> our owner token, for every partition we write."""
        return {p: part.token for p, part in self.partitions.items() if not part.following}

    # The three below are read by the status and metrics threads too: ``list(...)`` of the
    # items is one step for the interpreter, so the loop thread cannot change them mid-read.

    def owned_numbers(self) -> list[int]:
        """The partitions we write."""
        return sorted(p for p, part in list(self.partitions.items()) if not part.following)

    def following_numbers(self) -> list[int]:
        return sorted(p for p, part in list(self.partitions.items()) if part.following)

    def fenced_numbers(self) -> list[int]:
        return sorted(p for p, part in list(self.partitions.items()) if part.fenced)
