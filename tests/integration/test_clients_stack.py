"""BookClient on the real stack, through a gateway crash: its books end equal to the source.

md_service and the gateway run as real processes on the embedded servers; the feed runs
in a thread. Mid-stream the gateway is SIGKILLed and a new one started on the same port:
the clients must notice, reconnect with backoff, recover (``since`` replay or a fresh
snapshot) and end with books equal to the books rebuilt from Kafka, at the seq md_service
last published — with no gap or checksum failure ever accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import threading
from collections import defaultdict
from collections.abc import Iterator

import pytest

from bookcast.processes import TierProcess
from clients import Backoff, BookClient, ClientOptions
from feed_simulator.config import add_arguments as feed_arguments
from feed_simulator.config import load_config as feed_config
from feed_simulator.producer import run_feed
from tests.integration.stack_helpers import (
    isolated_stack,
    source_books,
    stored_book,
    stored_state,
    wait_until,
    wait_until_async,
)

pytestmark = pytest.mark.integration

PAIRS = ("BTC-USD", "ETH-USD", "DOGE-USD")
PARTITIONS = 4
EVENTS = 3_000
RATE = 400  # events/s: ~7.5 s of stream
OPTIONS = ClientOptions(backoff=Backoff(initial=0.05, maximum=0.5), ping_interval=None, resync_retry=2.0)


@pytest.fixture
def stack(infra) -> Iterator[dict]:
    env, topic, prefix = isolated_stack(infra, "client", PAIRS, PARTITIONS)
    md = TierProcess("md", "md_service", env=env).start()
    gateways = [TierProcess("gateway", "gateway", env=env, listens=True).start()]
    try:
        yield {"env": env, "topic": topic, "prefix": prefix, "gateways": gateways}
    finally:
        for gateway in gateways:
            gateway.stop()
        md.stop()


def _feed(env: dict) -> threading.Thread:
    parser = argparse.ArgumentParser()
    feed_arguments(parser)
    args = parser.parse_args(
        ["--rate", str(RATE), "--pairs", ",".join(PAIRS), "--seed", "17", "--max-levels", "80"]
    )
    cfg = feed_config(args, {**env, "BOOKCAST_PARTITIONS": str(PARTITIONS)})
    thread = threading.Thread(target=run_feed, args=(cfg,), kwargs={"max_events": EVENTS}, daemon=True)
    thread.start()
    return thread


async def test_books_survive_a_gateway_crash_and_equal_the_source(stack, infra) -> None:
    gateway = stack["gateways"][0]
    url = gateway.ws_url
    history: dict[str, list[tuple[str, int]]] = defaultdict(list)
    # One client takes callbacks, the other iterates; both follow every pair on one connection.
    by_callback = BookClient(
        url, PAIRS, options=OPTIONS, on_update=lambda u: history[u.pair].append((u.kind, u.seq))
    )
    by_iterator = BookClient(url, PAIRS[:2], options=OPTIONS)
    iterated: list[tuple[str, int]] = []

    async def iterate() -> None:
        async for update in by_iterator.updates():
            iterated.append((update.pair, update.seq))

    feed = _feed(stack["env"])
    async with by_callback, by_iterator:
        reader = asyncio.create_task(iterate())
        await by_callback.wait_synced(timeout=60)
        await by_iterator.wait_synced(timeout=60)
        await by_callback.wait_for(lambda: by_callback.stats.deltas >= 20, timeout=30)

        gateway.kill()  # a crash: no close frame, clients only see the TCP connection die
        gateway.stop()
        await by_callback.wait_for(lambda: not by_callback.connected, timeout=10)
        replacement = TierProcess(
            "gateway", "gateway", env=stack["env"], listens=True, port=gateway.port
        ).start()
        stack["gateways"].append(replacement)
        await by_callback.wait_for(lambda: by_callback.connected, timeout=20)
        await by_iterator.wait_for(lambda: by_iterator.connected, timeout=20)

        await wait_until_async(lambda: not feed.is_alive(), what="the feed to finish")
        truth = source_books(infra.kafka_bootstrap, stack["topic"], PARTITIONS, EVENTS)
        prefix, redis_url = stack["prefix"], infra.redis_url
        for pair, src in truth.items():
            wait_until(
                lambda p=pair, x=src.last_xseq: (
                    stored_state(redis_url, prefix, p, PARTITIONS).get("xseq") == str(x)
                ),
                what=f"md_service to publish {pair} through xseq {src.last_xseq}",
            )
        final = {pair: stored_book(redis_url, prefix, pair, PARTITIONS) for pair in PAIRS}
        for client in (by_callback, by_iterator):
            for pair in client.pairs:
                state, _ = final[pair]
                await client.wait_for(lambda c=client, p=pair, s=state: c.book(p).seq == s.seq, timeout=30)

        for client in (by_callback, by_iterator):
            stats = client.stats
            assert stats.disconnects >= 1 and stats.reconnects >= 1, stats.as_dict()
            # Recovered either by a `since` replay or by fresh snapshots after the reconnect.
            assert stats.recoveries >= 1 or stats.snapshots > len(client.pairs), stats.as_dict()
            assert stats.checksum_failures == 0 and stats.bad_frames == 0, stats.as_dict()
            for pair in client.pairs:
                state, md_book = final[pair]
                view = client.book(pair)
                assert view.synced and (view.epoch, view.seq) == (state.epoch, state.seq)
                assert md_book.book == truth[pair].book, f"md_service's {pair} differs from the source"
                snap, expected = view.as_snapshot(), md_book.to_snapshot()
                assert [tuple(x) for x in snap.bids] == [tuple(x) for x in expected.bids], pair
                assert [tuple(x) for x in snap.asks] == [tuple(x) for x in expected.asks], pair
                best_bid, best_ask = view.best_bid(), view.best_ask()
                assert best_bid is not None and best_ask is not None
                assert float(best_bid.price) < float(best_ask.price)
                assert [tuple(level) for level in view.top(3).bids] == [tuple(x) for x in snap.bids[:3]]
        # Every update a program was told about continued the one before, or was a snapshot.
        for pair, updates in history.items():
            for (_, before), (kind, seq) in itertools.pairwise(updates):
                assert kind == "snapshot" or seq == before + 1, f"{pair}: {before} -> {seq}"
        assert {pair for pair, _ in iterated} == set(PAIRS[:2])
        await by_iterator.close()
        await asyncio.wait_for(reader, 5)  # the iterator ends when its client closes
