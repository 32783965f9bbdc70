"""Recording a real gateway as a conformance case (``recorded_stream.jsonl``).

A crafted case says what a gateway should send; this one is what the real pipeline sent.
:func:`record` connects to a running gateway (``bookcast up --pairs BTC-USD,ETH-USD``), records
what it sends for a while, drops the connection, subscribes again with ``since`` after a pause
and records the replay: the frames are kept byte for byte (only the acks' ids become
placeholders), and what a client must hold after each one is computed with mdcore's LocalBook,
the reference implementation.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

from tests.conformance.kit import CaseWriter, id_ref


async def record(url: str, pairs: list[str], frames: int, pause: float) -> CaseWriter:
    """Record what a real gateway sends: a subscribe, ``frames`` frames, a reconnect with since."""
    from websockets.asyncio.client import connect

    from mdcore.checksum import CHECKSUM_DEPTH
    from mdcore.codec import decode_server_frame
    from mdcore.local_book import LocalBook
    from mdcore.messages import Ack, Delta, Snapshot

    books = {pair: LocalBook(pair) for pair in pairs}
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    w = CaseWriter(
        "recorded_stream",
        f"Recorded from a real run of the pipeline (feed, Kafka, md_service, Redis, gateway: `bookcast up "
        f"--pairs {','.join(pairs)}`) on {when}: the frames the gateway sent, byte for byte (acks' ids "
        "aside), then the same after a reconnect with since. The recorder dropped the connection "
        "itself; here the gateway closes it (1001), to the same effect.",
        pairs,
        source="recorded",
    )

    def expected(pair: str) -> dict[str, Any]:
        local = books[pair]
        bids, asks = local.wire_levels("b"), local.wire_levels("a")
        return {
            "synced": True, "epoch": local.epoch, "seq": local.seq, "checksum": local.checksum,
            "bids": [list(x) for x in bids[:CHECKSUM_DEPTH]],
            "asks": [list(x) for x in asks[:CHECKSUM_DEPTH]],
            "depth": [len(bids), len(asks)],
        }  # fmt: skip

    def take(text: str, ack_id: int, name: str) -> None:
        counts = {"snapshots": 0, "deltas": 0, "stale_deltas": 0, "recoveries": 0}
        messages = decode_server_frame(text)
        touched: list[str] = []
        rewritten = False
        for message in messages:
            if isinstance(message, Snapshot):
                books[message.pair].load_snapshot(message)
                counts["snapshots"] += 1
                touched.append(message.pair)
            elif isinstance(message, Delta):
                if books[message.pair].apply_delta(message):
                    counts["deltas"] += 1
                else:
                    counts["stale_deltas"] += 1
                touched.append(message.pair)
            elif isinstance(message, Ack) and message.id == ack_id:
                rewritten = True
                counts["recoveries"] += 1 if message.recovered else 0
        if rewritten:  # the client's id is its own: a placeholder (orjson and compact json agree)
            parsed = json.loads(text)
            for item in parsed if isinstance(parsed, list) else [parsed]:
                if item.get("type") == "subscribed" and item.get("id") == ack_id:
                    item["id"] = id_ref(name)
            text = json.dumps(parsed, separators=(",", ":"))
        w.server_sends_raw(text)
        w.expect({pair: expected(pair) for pair in dict.fromkeys(touched)}, **counts)

    async with connect(url, compression=None, max_size=2**24) as ws:
        w.accept(0)
        w.client_sends({"op": "subscribe", "pairs": pairs, "since": None}, "sub")
        await ws.send(json.dumps({"op": "subscribe", "pairs": pairs, "id": 1}))
        for _ in range(frames):
            take(await asyncio.wait_for(ws.recv(), 10), 1, "sub")
    w.server_closes(1001, "server shutting down")
    w.expect({pair: expected(pair) for pair in pairs}, note="still synced while away")
    await asyncio.sleep(pause)  # the gateway moves on: the reconnect has deltas to replay
    since = {p: {"epoch": books[p].epoch, "seq": books[p].seq} for p in pairs}
    w.count(reconnects=1)
    async with connect(url, compression=None, max_size=2**24) as ws:
        w.accept(0)
        w.client_sends({"op": "subscribe", "pairs": pairs, "since": since}, "sub2")
        await ws.send(json.dumps({"op": "subscribe", "pairs": pairs, "id": 2, "since": since}))
        for _ in range(max(frames // 2, 3)):
            take(await asyncio.wait_for(ws.recv(), 10), 2, "sub2")
    w.expect_quiet()
    return w
