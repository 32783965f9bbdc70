"""What a Redis Cluster says about itself: ``CLUSTER NODES`` parsed into node descriptors.

Pure (text in, values out), apart from :mod:`bookcast.embedded_cluster`, which runs the
processes and polls the nodes: the parsing and the comparisons it waits on are tested with
plain strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from redis.crc import REDIS_CLUSTER_HASH_SLOTS

from bookcast.loopback import LOOPBACK

SLOT_COUNT = REDIS_CLUSTER_HASH_SLOTS
UNHEALTHY_FLAGS = frozenset({"fail", "fail?", "handshake", "noaddr"})

Role = Literal["primary", "replica"]


@dataclass(frozen=True, slots=True)
class ClusterNodeInfo:
    """One node as the live cluster describes it (a snapshot: read ``cluster.nodes`` again).

    ``pid`` is None while the process this cluster started for the node is not running.
    """

    port: int
    bus_port: int
    node_id: str
    role: Role
    slots: tuple[tuple[int, int], ...]  # inclusive ranges; empty for replicas
    primary_id: str | None  # the node it replicates; None for primaries
    pid: int | None
    flags: tuple[str, ...]  # CLUSTER NODES flags, e.g. ("master", "fail")
    config_epoch: int

    @property
    def address(self) -> str:
        """``host:port`` for clients."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the node's process runs."""
        return self.pid is not None

    def owns(self, slot: int) -> bool:
        """True if this node is a primary serving ``slot``."""
        return any(lo <= slot <= hi for lo, hi in self.slots)


@dataclass(frozen=True, slots=True)
class NodeLine:
    """One parsed line of ``CLUSTER NODES``."""

    node_id: str
    port: int
    bus_port: int
    flags: frozenset[str]
    primary_id: str | None
    config_epoch: int
    connected: bool
    slots: tuple[tuple[int, int], ...]

    @property
    def is_primary(self) -> bool:
        return "master" in self.flags

    @property
    def healthy(self) -> bool:
        return not (self.flags & UNHEALTHY_FLAGS)


def parse_nodes(text: str) -> list[NodeLine]:
    """Parse ``CLUSTER NODES`` (one node per line; migrating/importing ``[...]`` entries skipped)."""
    lines = []
    for raw in text.splitlines():
        fields = raw.split()
        if len(fields) < 8:
            continue
        address = fields[1].split(",", 1)[0]  # ip:port@cport[,hostname]
        host_port, _, bus = address.partition("@")
        port = host_port.rpartition(":")[2]
        slots = []
        for item in fields[8:]:
            if item.startswith("["):
                continue
            lo, _, hi = item.partition("-")
            slots.append((int(lo), int(hi or lo)))
        lines.append(
            NodeLine(
                node_id=fields[0],
                port=int(port or 0),
                bus_port=int(bus or 0),
                flags=frozenset(fields[2].split(",")),
                primary_id=None if fields[3] == "-" else fields[3],
                config_epoch=int(fields[6]),
                connected=fields[7] == "connected",
                slots=tuple(sorted(slots)),
            )
        )
    return lines


def merge_ranges(ranges: Iterable[tuple[int, int, str]]) -> tuple[tuple[int, int, str], ...]:
    """Sorted slot ranges with adjacent ranges of the same owner joined, for comparing views."""
    merged: list[tuple[int, int, str]] = []
    for lo, hi, owner in sorted(ranges):
        if merged and merged[-1][2] == owner and merged[-1][1] + 1 == lo:
            merged[-1] = (merged[-1][0], hi, owner)
        else:
            merged.append((lo, hi, owner))
    return tuple(merged)


def even_split(primaries: int) -> list[tuple[int, int]]:
    """The 16384 slots in ``primaries`` contiguous ranges whose sizes differ by at most one."""
    return [(i * SLOT_COUNT // primaries, (i + 1) * SLOT_COUNT // primaries - 1) for i in range(primaries)]
