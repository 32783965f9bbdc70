"""The whole pipeline on a real 3-primary Redis Cluster: feed -> Kafka -> md_service -> cluster -> gateway.

md_service writes each partition's window with one script on the node that owns the
partition's hash slot and publishes with ``SPUBLISH``; the gateway subscribes each pair on
that node (``SSUBSCRIBE``). Pairs spread over every partition and so over every primary;
verifying clients must end with books equal to the source, rebuilt from Kafka, at the seq
md_service last wrote, with no gap, checksum failure or resync on the way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bookcast.processes import tier_env
from clients import BookClient
from feed_simulator.producer import run_feed
from feed_simulator.topic import ensure_topic
from mdcore.instruments import default_pairs
from mdcore.redis_layout import RedisLayout
from tests.integration.pipeline_helpers import feed_settings, md_and_gateway
from tests.integration.stack_helpers import source_books, stored_book, unique, wait_until, wait_until_async

pytestmark = pytest.mark.integration

PAIRS = tuple(default_pairs(24))
PARTITIONS = 8
EVENTS = 3000
RATE = 600


@pytest.fixture(scope="module")
def stack(infra, redis_cluster) -> Iterator[dict]:
    topic, prefix = unique("cluster-deltas"), unique("cl")
    ensure_topic(infra.kafka_bootstrap, topic, PARTITIONS)
    env = tier_env(
        infra.kafka_bootstrap, redis_cluster.url, topic=topic, redis_prefix=prefix, md_group=unique("md"),
        pairs=",".join(PAIRS), partitions=str(PARTITIONS),
    )  # fmt: skip
    env["REDIS_CLUSTER"] = redis_cluster.seeds
    layout = RedisLayout(prefix, PARTITIONS)
    owners = {redis_cluster.primary_for_key(layout.tag(layout.partition(p))).port for p in PAIRS}
    assert len(owners) == 3, "the pairs should live on every primary"
    with md_and_gateway(env) as (md, gateway):
        yield {"env": env, "topic": topic, "layout": layout, "md": md, "gateway": gateway}


async def test_books_on_every_primary_equal_the_source(stack, infra, redis_cluster) -> None:
    url = stack["gateway"].ws_url
    clients = [
        BookClient(url, list(PAIRS[:8])),
        BookClient(url, list(PAIRS[8:16])),
        BookClient(url, list(PAIRS[16:])),
        BookClient(url, list(PAIRS)),
    ]
    for client in clients[:2]:  # two subscribe before any data, two join mid-stream
        await client.start()
    feed = threading.Thread(target=run_feed, args=(feed_settings(stack["env"], PAIRS, RATE, 21, PARTITIONS),),
                            kwargs={"max_events": EVENTS}, daemon=True)  # fmt: skip
    feed.start()
    try:
        for client in clients[2:]:
            await client.start()
        for client in clients:
            await client.wait_synced(timeout=60)
        await wait_until_async(lambda: not feed.is_alive(), what="the feed to finish")
        truth = source_books(infra.kafka_bootstrap, stack["topic"], PARTITIONS, EVENTS)
        layout = stack["layout"]
        for pair, src in truth.items():  # md_service wrote the window holding the pair's last event
            wait_until(
                lambda p=pair, x=src.last_xseq: (
                    (loaded := stored_book(redis_cluster.url, layout.prefix, p, PARTITIONS)) is not None
                    and loaded[0].xseq == x
                ),
                what=f"md_service to write {pair} through xseq {src.last_xseq}",
            )
        final = {pair: stored_book(redis_cluster.url, layout.prefix, pair, PARTITIONS) for pair in truth}
        for pair, loaded in final.items():
            assert loaded is not None and loaded[1].book == truth[pair].book, f"{pair}: stored book differs"
        for client in clients:
            for pair in client.pairs:
                state, md_book = final[pair]  # type: ignore[misc]
                await wait_until_async(
                    lambda c=client, p=pair, s=state.seq: c.book(p).seq == s,
                    what=f"{pair} at seq {state.seq}",
                )
                view = client.book(pair).as_snapshot()
                expected = md_book.to_snapshot()
                assert (view.epoch, view.seq) == (state.epoch, state.seq)
                assert [tuple(x) for x in view.bids] == [tuple(x) for x in expected.bids], pair
                assert [tuple(x) for x in view.asks] == [tuple(x) for x in expected.asks], pair
            stats = client.stats
            assert stats.gaps == 0 and stats.checksum_failures == 0 and stats.resyncs == 0, stats.as_dict()
    finally:
        feed.join(timeout=60)
        for client in clients:
            await client.close()
