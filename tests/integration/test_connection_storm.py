"""A connection storm on the real pipeline: a few hundred clients open at once, all sync, none fails.

Before the gateway shared snapshot encodings, reloaded replicas with one checksum and refused
work with 503 while its loop ran late, a storm collapsed it: handshakes timed out, clients
reconnected and added load. Here 300 clients of ``bookcast load`` (the real client code, in its
own process) connect at the same instant to a gateway fed by the real feed and md_service.
Every one must connect and sync; a 503 is allowed only if that client then gets in.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdcore.instruments import default_pairs
from mdcore.redis_layout import RedisLayout
from tests.integration.pipeline_helpers import feed_in_background, feed_settings, md_and_gateway
from tests.integration.stack_helpers import isolated_stack, wait_until

pytestmark = pytest.mark.integration

PAIRS = tuple(default_pairs(24))
PARTITIONS = 8
RATE = 400
CLIENTS = 300


@pytest.fixture(scope="module")
def stack(infra) -> Iterator[dict]:
    env, _topic, prefix = isolated_stack(infra, "storm", PAIRS, PARTITIONS)
    with md_and_gateway(env) as (_md, gateway):
        yield {"env": env, "prefix": prefix, "gateway": gateway, "redis_url": infra.redis_url}


def test_three_hundred_clients_opened_at_once_all_sync(stack, tmp_path: Path) -> None:
    import redis

    stop = threading.Event()
    feed = feed_in_background(feed_settings(stack["env"], PAIRS, RATE, 9, PARTITIONS), RATE * 60, stop)
    client = redis.Redis.from_url(stack["redis_url"])
    try:
        layout = RedisLayout(stack["prefix"], PARTITIONS)
        keys = [layout.pairs_key(p) for p in range(PARTITIONS)]
        wait_until(
            lambda: sum(client.scard(k) for k in keys) == len(PAIRS), 60, "every pair to have a stream"
        )
        report = tmp_path / "load.json"
        done = subprocess.run(
            [sys.executable, "-m", "bookcast", "load", "--url", stack["gateway"].ws_url,
             "--connections", str(CLIENTS), "--pairs", "3", "--pool", ",".join(PAIRS),
             "--ramp", "0", "--duration", "20", "--processes", "1",
             "--verify-sample", "0.1", "--quiet", "--json", str(report)],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        figures = json.loads(report.read_text())
    finally:
        stop.set()
        feed.join(timeout=10)
        client.close()
    keys = ("connected_at_end", "synced_at_end", "connect_failures", "refusals", "refused_then_connected",
            "gaps", "checksum_failures", "disconnects", "errors")  # fmt: skip
    summary = {k: figures.get(k, figures["counters"].get(k)) for k in keys}
    assert figures["connected_at_end"] == CLIENTS and figures["synced_at_end"] == CLIENTS, summary
    assert figures["connect_failures"] == 0 and figures["disconnects"] == 0, summary
    assert figures["gaps"] == 0 and figures["checksum_failures"] == 0, summary
