"""mdcore.status_bus: the bus's keys, a status's lifetime, rates, latency blocks and payloads.

The writes are mdruntime's (``tests/unit/mdruntime/test_status_bus.py``); statuses written and
read back through a real Redis are ``tests/integration/test_gateway_health.py``'s.
"""

from __future__ import annotations

import pytest

from mdcore.latency import LatencyHistogram
from mdcore.status_bus import (
    KINDS,
    STATUS_VERSION,
    block_histogram,
    decode_status,
    encode_status,
    index_key,
    latency_block,
    rates,
    status_key,
    ttl_ms,
)


def test_status_bus_keys_payloads_and_rates() -> None:
    assert status_key("bc", "md", "h-1") == "bc:{status}:md:h-1" and index_key("bc") == "bc:{status}:index"
    with pytest.raises(ValueError):
        status_key("bc", "feed", "x")
    assert ttl_ms(1.0) == 3000 and ttl_ms(5) == 15000
    assert rates({"a": 30, "b": 5}, {"a": 10, "b": 9}, 2.0) == {"a": 10.0, "b": 0.0}
    hist = LatencyHistogram()
    for v in (1500, 2500, 250_000):
        hist.record(v)
    block = latency_block(hist)
    assert block["count"] == 3 and block["max"] == 250.0
    back = block_histogram(decode_status(encode_status({"v": 1, "kind": "md", "b": block}))["b"])  # type: ignore[index]
    assert back.counts == hist.counts and back.highest() == 250_000
    for bad in (None, b"not json", b"[1]", b'{"v":2,"kind":"md"}', b'{"v":1,"kind":"x"}'):
        assert decode_status(bad) is None
    assert block_histogram({"buckets": "nope"}).count == 0


def test_every_key_of_the_bus_shares_one_hash_tag() -> None:
    keys = [status_key("bc", kind, "x") for kind in sorted(KINDS)] + [index_key("bc")]
    assert all(key.startswith("bc:{status}:") for key in keys)  # one slot: the reader's MGET is one command


def test_a_status_lives_three_intervals_and_never_under_three_seconds() -> None:
    assert ttl_ms(0.1) == 3_000 and ttl_ms(0) == 3_000 and ttl_ms(2.5) == 7_500


def test_rates_over_no_time_do_not_divide_by_zero_and_a_reset_counter_counts_as_zero() -> None:
    assert rates({"a": 5}, {}, 0.0) == {"a": 5_000_000.0}  # a counter new since before counts from 0
    assert rates({"a": 1}, {"a": 8}, 1.0) == {"a": 0.0}  # the process restarted: not negative


def test_a_status_of_each_kind_reads_back_from_bytes_or_text() -> None:
    for kind in KINDS:
        body = {"v": STATUS_VERSION, "kind": kind, "id": "x", "n": 1}
        assert decode_status(encode_status(body)) == body
        assert decode_status(encode_status(body).decode()) == body


def test_a_latency_block_without_a_usable_max_still_gives_its_buckets() -> None:
    hist = LatencyHistogram()
    hist.record(2_000)
    block = latency_block(hist)
    back = block_histogram({"buckets": block["buckets"], "max_us": "lots"})
    assert back.counts == hist.counts and back.count == 1
