"""The real tiers as a test's pipeline: md_service and a gateway as processes, the feed in a thread.

Shared by the tests that run the whole pipeline on the embedded servers, so each test
says only what it varies (pairs, rate, seed, how many events).
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from bookcast.processes import TierProcess
from feed_simulator.config import FeedConfig
from feed_simulator.config import add_arguments as feed_arguments
from feed_simulator.config import load_config as feed_config
from feed_simulator.producer import run_feed


@contextmanager
def md_and_gateway(env: dict[str, str]) -> Iterator[tuple[TierProcess, TierProcess]]:
    """md_service and one gateway, started with ``env`` and stopped afterwards."""
    md = TierProcess("md", "md_service", env=env).start()
    gateway = TierProcess("gateway", "gateway", env=env, listens=True).start()
    try:
        yield md, gateway
    finally:
        gateway.stop()
        md.stop()


def feed_settings(
    env: dict[str, str], pairs: Sequence[str], rate: float, seed: int, partitions: int
) -> FeedConfig:
    """The feed's configuration as `bookcast feed --rate R --pairs P --seed S` would read it."""
    parser = argparse.ArgumentParser()
    feed_arguments(parser)
    args = parser.parse_args(["--rate", str(rate), "--pairs", ",".join(pairs), "--seed", str(seed)])
    return feed_config(args, {**env, "BOOKCAST_PARTITIONS": str(partitions)})


def feed_in_background(
    cfg: FeedConfig, max_events: int | None, stop: threading.Event | None = None
) -> threading.Thread:
    """Run the feed for ``max_events`` events (None: no limit) or until ``stop``, in a daemon thread."""
    thread = threading.Thread(
        target=run_feed, args=(cfg,), kwargs={"max_events": max_events, "stop": stop}, daemon=True
    )
    thread.start()
    return thread
