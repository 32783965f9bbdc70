"""What this instance owns: its Kafka partitions (with their Redis owner tokens) and pair streams.

Pure bookkeeping, no I/O: the service asks it which partitions a window writes, records
what Redis accepted, and drops a partition's streams when the partition goes away. A
partition's ``position`` is the next offset to consume (after the last message handled);
``written`` the offset stored in Redis with the last accepted window.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from md_service.pair_stream import PairStream, Position, WindowOutput
from md_service.window_script import PartitionWrite


@dataclass
class OwnedPartition:
    number: int
    token: str
    position: int | None = None  # next offset to consume; None until the first message
    written: int | None = None  # offset Redis stores for it after our last accepted window
    lost: bool = False  # another instance owns it now: skip its messages, write nothing
    rewound: bool = False  # read again from its start once in this assignment (to rebuild a book)
    behind: bool = False  # Redis lost writes of it (md_service.write_marks): restored pairs get new epochs
    pairs: set[str] = field(default_factory=set)


def new_token(instance: str) -> str:
    """An owner token: unique per assignment, readable in Redis (which instance holds what)."""
    return f"{instance}/{uuid.uuid4().hex[:8]}"


class Ownership:
    """Partitions and streams of one instance."""

    def __init__(self) -> None:
        self.partitions: dict[int, OwnedPartition] = {}
        self.streams: dict[str, PairStream] = {}
        self.replacing: dict[str, Position] = {}  # pairs whose unusable stored stream a new epoch replaces

    def own(self, numbers: Iterable[int], token: str) -> None:
        for p in numbers:
            self.drop(p)
            self.partitions[p] = OwnedPartition(p, token)

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

    def mark_lost(self, number: int) -> None:
        """Another instance owns the partition: drop its streams, keep it only to skip its messages."""
        part = self.drop(number)
        if part is not None:
            part.lost = True
            part.pairs = set()
            self.partitions[number] = part

    def writes_for(
        self, outputs: list[WindowOutput], every: bool, among: Collection[int] | None = None
    ) -> list[PartitionWrite]:
        """Partitions a window write names: those with outputs or a new position (all if ``every``).

        ``among`` limits it to the partitions whose windows were closed.
        """
        touched = {out.partition for out in outputs}
        writes = []
        for part in self.partitions.values():
            if part.lost or (among is not None and part.number not in among):
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

    def owned_numbers(self) -> list[int]:
        return sorted(p for p, part in self.partitions.items() if not part.lost)

    def lost_numbers(self) -> list[int]:
        return sorted(p for p, part in self.partitions.items() if part.lost)
