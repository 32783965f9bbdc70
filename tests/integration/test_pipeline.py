"""The walking skeleton end to end: feed -> Kafka -> md_service -> Redis -> gateway -> clients.

Every tier runs as the real command in its own process on the embedded servers. Clients
join before and during the stream; every delta they apply must be contiguous and verify,
and at the end each client's book must equal the book rebuilt independently from the
exchange events in Kafka, at the seq md_service last published.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator

import pytest

from clients import BookClient
from feed_simulator.producer import run_feed
from tests.integration.pipeline_helpers import feed_settings, md_and_gateway
from tests.integration.stack_helpers import (
    isolated_stack,
    source_books,
    stored_book,
    stored_state,
    wait_until,
    wait_until_async,
)

pytestmark = pytest.mark.integration

PAIRS = ("BTC-USD", "ETH-USD", "SOL-USD")
PARTITIONS = 8
EVENTS = 2400
RATE = 500  # events/s: about 5 s of stream


@pytest.fixture(scope="module")
def stack(infra) -> Iterator[dict]:
    env, topic, prefix = isolated_stack(infra, "deltas", PAIRS, PARTITIONS)
    with md_and_gateway(env) as (md, gateway):
        yield {"env": env, "topic": topic, "prefix": prefix, "md": md, "gateway": gateway}


def _feed_config(env: dict, seed: int):
    return feed_settings(env, PAIRS, RATE, seed, PARTITIONS)


async def test_clients_books_equal_the_source_at_the_same_seq(stack, infra) -> None:
    url = stack["gateway"].ws_url
    applied: dict[tuple[int, str], list[tuple[str, int, str]]] = defaultdict(list)

    def recorder(client_id: int):
        return lambda update: applied[(client_id, update.pair)].append(
            (update.kind, update.seq, update.epoch)
        )

    # Client 0 subscribes before any data exists; clients 1 and 2 join mid-stream.
    early = BookClient(url, ["BTC-USD", "ETH-USD"], on_update=recorder(0))
    await early.start()
    report_box: list = []
    feed = threading.Thread(
        target=lambda: report_box.append(run_feed(_feed_config(stack["env"], seed=11), max_events=EVENTS))
    )
    feed.start()
    try:
        await early.wait_synced(timeout=60)
        late = [
            BookClient(url, ["ETH-USD", "SOL-USD"], on_update=recorder(1)),
            BookClient(url, ["BTC-USD", "SOL-USD", "ETH-USD"], on_update=recorder(2)),
        ]
        for client in late:
            await client.start()
            await client.wait_synced(timeout=60)
        clients = [early, *late]
        await wait_until_async(lambda: not feed.is_alive(), what="the feed to finish")
        report = report_box[0]
        assert report.delivered_events == EVENTS and report.failed_events == 0

        truth = source_books(infra.kafka_bootstrap, stack["topic"], PARTITIONS, EVENTS)
        assert set(truth) == set(PAIRS)
        prefix, redis_url = stack["prefix"], infra.redis_url
        for pair, src in truth.items():  # md_service has published the window holding the last event
            wait_until(
                lambda p=pair, x=src.last_xseq: stored_state(redis_url, prefix, p).get("xseq") == str(x),
                what=f"md_service to publish {pair} through xseq {src.last_xseq}",
            )
        final = {pair: stored_book(redis_url, prefix, pair) for pair in PAIRS}
        for client in clients:
            for pair in client.pairs:
                state, _ = final[pair]
                await wait_until_async(
                    lambda c=client, p=pair, s=state.seq: c.book(p).seq == s,
                    what=f"{pair} at seq {state.seq}",
                )

        for pair, (_state, md_book) in final.items():
            assert md_book.book == truth[pair].book, (
                f"md_service's stored {pair} book differs from the source"
            )
        for cid, client in enumerate(clients):
            stats = client.stats
            assert stats.gaps == 0 and stats.checksum_failures == 0 and stats.resyncs == 0, stats.as_dict()
            for pair in client.pairs:
                view = client.book(pair).as_snapshot()
                state, md_book = final[pair]
                assert (view.epoch, view.seq) == (state.epoch, state.seq)
                expected = md_book.to_snapshot()
                assert [tuple(x) for x in view.bids] == [tuple(x) for x in expected.bids], (cid, pair)
                assert [tuple(x) for x in view.asks] == [tuple(x) for x in expected.asks], (cid, pair)
                history = applied[(cid, pair)]
                assert history[0][0] == "snapshot"
                deltas = [seq for kind, seq, _ in history if kind == "delta"]
                start = history[0][1]
                assert deltas == list(range(start + 1, start + 1 + len(deltas))), f"client {cid} {pair} gap"
                assert len(deltas) >= 5, f"client {cid} {pair} saw too few deltas to mean anything"
    finally:
        feed.join(timeout=60)
        for client in [early, *locals().get("late", [])]:
            await client.close()
