"""mdcore.partitioning: the one rule every tier computes a pair's partition with.

The placements below are pinned: a topic already written keeps its pairs where they are only
while the rule does not change (librdkafka's ``consistent_random``: CRC-32 of the key, modulo
the partition count). That the feed really produces each pair to this partition is
``tests/integration/test_feed_kafka.py``'s.
"""

from __future__ import annotations

import zlib

import pytest

from mdcore.partitioning import DEFAULT_PARTITIONS, KeyPartitions, partition_of


@pytest.mark.parametrize(
    ("pair", "partitions", "expected"),
    [
        ("BTC-USD", 8, 0),
        ("ETH-USD", 8, 7),
        ("SOL-USD", 8, 3),
        ("XRP-USD", 8, 7),
        ("BTC-USD", 3, 2),
        ("ETH-USD", 1, 0),
    ],
)
def test_a_pairs_partition_is_pinned(pair: str, partitions: int, expected: int) -> None:
    assert partition_of(pair, partitions) == expected == zlib.crc32(pair.encode()) % partitions


@pytest.mark.parametrize("partitions", [0, -1])
def test_a_topic_has_at_least_one_partition(partitions: int) -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        partition_of("BTC-USD", partitions)
    with pytest.raises(ValueError, match="at least one partition"):
        KeyPartitions(partitions)


def test_the_feeds_key_table_agrees_with_the_rule_and_computes_each_key_once() -> None:
    table = KeyPartitions(DEFAULT_PARTITIONS)
    pairs = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD"]
    assert [table[p.encode()] for p in pairs] == [partition_of(p, DEFAULT_PARTITIONS) for p in pairs]
    assert set(table) == {p.encode() for p in pairs}  # remembered
    table[b"BTC-USD"] = 99  # a remembered key is a dict lookup, not computed again
    assert table[b"BTC-USD"] == 99
