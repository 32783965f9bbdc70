"""The status bus: where each running tier leaves a small JSON status for the dashboard.

Every md_service instance, gateway process and load generator writes its status about once
a second to ``{prefix}:{status}:<kind>:<id>`` with a short TTL, and registers the key in the
sorted set ``{prefix}:{status}:index`` scored by its expiry (ms since the epoch). A reader
(the gateway's ``/dashboard``) asks the index for the keys not yet expired and reads them in
one round trip: no ``SCAN`` over a keyspace holding every pair's streams. A tier that dies
disappears within the TTL. Every key of the bus shares the hash tag ``{status}``, so on a
Redis Cluster they live in one slot and the reader's ``MGET`` stays one command.

A status is a JSON object (``version`` :data:`STATUS_VERSION`)::

    {"v": 1, "kind": "md", "id": "host-1234", "t": <ms since the epoch>, "interval_s": 1.0,
     "rates": {...per second over the last interval...}, "totals": {...since start...},
     "latency": {"<stage>": {"count", "p50", "p90", "p99", "p999", "max" (ms), "buckets": [[i, n], ...]}},
     ...kind-specific fields...}

Latencies are those of the last interval, in the bucket layout of :mod:`mdcore.latency`,
so statuses from many processes merge exactly. This module only names keys and shapes
payloads; the writes are each tier's (synchronous or asyncio Redis).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from mdcore.latency import LatencyHistogram

STATUS_VERSION = 1
KINDS = frozenset({"md", "gateway", "load"})
DEFAULT_INTERVAL_S = 1.0


def status_key(prefix: str, kind: str, instance: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown status kind {kind!r}")
    return f"{prefix}:{{status}}:{kind}:{instance}"


def index_key(prefix: str) -> str:
    return f"{prefix}:{{status}}:index"


def ttl_ms(interval_s: float) -> int:
    """How long a status lives: three intervals, at least three seconds."""
    return max(3_000, int(3_000 * interval_s))


def latency_block(histogram: LatencyHistogram) -> dict[str, Any]:
    """One stage's latency for a status: the percentiles (ms) and the buckets to merge."""
    body: dict[str, Any] = dict(histogram.summary_ms())
    body["buckets"] = histogram.to_wire()
    body["max_us"] = histogram.highest()
    return body


def block_histogram(block: Mapping[str, Any]) -> LatencyHistogram:
    """The histogram carried by a :func:`latency_block` (empty if the block is malformed)."""
    buckets = block.get("buckets")
    if not isinstance(buckets, list):
        return LatencyHistogram()
    max_us = block.get("max_us", 0)
    return LatencyHistogram.from_wire(buckets, max_us if isinstance(max_us, int) else 0)


def rates(now: Mapping[str, int], before: Mapping[str, int], seconds: float) -> dict[str, float]:
    """Per-second rates of every counter in ``now`` since ``before`` (a counter reset counts as 0)."""
    span = max(seconds, 1e-6)
    return {name: round(max(0, value - before.get(name, 0)) / span, 3) for name, value in now.items()}


def encode_status(body: Mapping[str, Any]) -> bytes:
    return orjson.dumps(body)


def decode_status(raw: bytes | str | None) -> dict[str, Any] | None:
    """A status read back, or None if it is missing, not JSON, of another version or kind."""
    if raw is None:
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or body.get("v") != STATUS_VERSION or body.get("kind") not in KINDS:
        return None
    return body
