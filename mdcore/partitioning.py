"""Which Kafka partition a pair lives in: one rule, computed from the pair alone by every tier.

The partition is the unit of atomicity in Redis (every key and channel of one partition shares
a hash tag, so one script writes a partition's window on one Redis Cluster slot), so the feed,
md_service and the gateways must agree on it without asking anyone. The rule is librdkafka's
default partitioner (``consistent_random``: CRC-32 of the key modulo the partition count), so
topics written by the default producer before the feed named partitions keep their placement;
the feed now names the partition itself, and md_service refuses an event found elsewhere.
Other producers (the Java client hashes with murmur2) must name the partition too.
"""

from __future__ import annotations

import zlib

DEFAULT_PARTITIONS = 8  # BOOKCAST_PARTITIONS: the topic's partition count, shared by every tier


def partition_of(pair: str, partitions: int) -> int:
    """The partition of ``pair`` in a topic of ``partitions`` partitions."""
    return partition_of_key(pair.encode(), partitions)


def partition_of_key(key: bytes, partitions: int) -> int:
    """The partition of a Kafka key (a pair's name, encoded): the one rule."""
    return zlib.crc32(key) % _checked(partitions)


def _checked(partitions: int) -> int:
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    return partitions


class KeyPartitions(dict[bytes, int]):
    """Kafka key (a pair's name) -> its partition, computed once per key: the feed's hot path
    names the partition of every event with one dict lookup."""

    def __init__(self, partitions: int) -> None:
        super().__init__()
        self.partitions = _checked(partitions)  # refused now, not at the first event

    def __missing__(self, key: bytes) -> int:
        partition = self[key] = partition_of_key(key, self.partitions)
        return partition
