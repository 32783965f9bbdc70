"""Write the conformance kit's cases (``cases/*.jsonl``).

    python -m tests.conformance.generate                   # the crafted cases (deterministic)
    python -m tests.conformance.generate --check           # exit 1 if a crafted file is not what this writes
    python -m tests.conformance.generate --record ws://127.0.0.1:8765/ws   # record a real run

(from the repository's root: the kit is the package ``tests.conformance``.)

Crafted cases are written from :class:`kit.Source` books, so they come out the same every time
(a test checks the committed files against this script). ``--record`` connects to a running
gateway (``bookcast up --pairs BTC-USD,ETH-USD``), records what it sends for a while, drops the
connection, subscribes again with ``since`` after a pause and records the replay: the frames
are kept byte for byte (only the acks' ids become placeholders), and what a client must hold
after each one is computed with mdcore's LocalBook, the reference implementation.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conformance.kit import CASES, CaseWriter, Source, encode, id_ref, unsynced

ROOT = Path(__file__).resolve().parents[2]

BTC, ETH, SOL = "BTC-USD", "ETH-USD", "SOL-USD"


def _subscribed(pairs: list[str], name: str, recovered: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "subscribed", "pairs": pairs, "id": id_ref(name)}
    if recovered is not None:
        body["recovered"] = recovered
    return body


def _synced_start(w: CaseWriter, sources: list[Source], note: str | None = None) -> None:
    """Connect, subscribe every source's pair, answer with the ack and snapshots in one frame."""
    pairs = [s.pair for s in sources]
    w.accept(0, note="the client connects to the first URL")
    w.client_sends(
        {"op": "subscribe", "pairs": pairs, "since": None}, "sub", "subscribe every pair, no since"
    )
    w.server_sends(_subscribed(pairs, "sub"), *(s.snapshot() for s in sources), note=note)
    w.expect({s.pair: s.expected() for s in sources}, snapshots=len(sources))


def normal_stream() -> CaseWriter:
    w = CaseWriter(
        "normal_stream",
        "Snapshots, then deltas applied one by one with every checksum verified: a 30-level book (the "
        "checksum covers 25), a zero quantity written '0' that deletes a level, a non-canonical quantity, "
        "a delete of a level that is not there, and a message of an unknown type, which is ignored.",
        [BTC, ETH],
    )
    btc = Source.with_depth(BTC, "7f3a9c", 41, 30)
    eth = Source.with_depth(ETH, "11b2e0", 7, 5)
    _synced_start(w, [btc, eth], "the ack and both snapshots in one array frame, as the gateway sends them")
    for _ in range(3):
        w.server_sends(btc.move())
        w.expect({BTC: btc.expected()}, deltas=1)
    w.server_sends(eth.move())
    w.expect({ETH: eth.expected(), BTC: btc.expected()}, deltas=1)
    best_ask = btc.levels("a")[0][0]
    w.server_sends(btc.delta(asks=[[best_ask, "0"]]), note="'0' is zero: the best ask goes")
    w.expect({BTC: btc.expected()}, deltas=1)
    w.server_sends(btc.delta(bids=[["99.95", "1.5"]]), note="'1.5' is '1.50000' for the checksum")
    w.expect({BTC: btc.expected()}, deltas=1)
    w.server_sends(
        btc.delta(bids=[["1.00", "0.00000"]]), note="deleting a level that is not there: no change"
    )
    w.expect({BTC: btc.expected()}, deltas=1)
    deep = btc.levels("b")[26][0]
    w.server_sends(
        btc.delta(bids=[[deep, "9.00000"]]), note="a change below the 25 levels the checksum covers"
    )
    w.expect({BTC: btc.expected()}, deltas=1)
    w.server_sends(
        {"type": "notice", "pair": BTC, "text": "a message type from a later protocol version"},
        note="an unknown type is ignored",
    )
    w.expect({BTC: btc.expected(), ETH: eth.expected()})
    for _ in range(3):
        w.server_sends(btc.move())
        w.expect({BTC: btc.expected()}, deltas=1)
    w.expect_quiet("nothing to ask for: no resync, no resubscribe")
    return w


def packed_frames() -> CaseWriter:
    w = CaseWriter(
        "packed_frames",
        "Array frames handled in array order: one window's deltas for two pairs, consecutive deltas of "
        "one pair in a frame, an unknown type among them, and an array of a single message.",
        [BTC, ETH],
    )
    btc = Source.with_depth(BTC, "b1", 500, 8)
    eth = Source.with_depth(ETH, "e1", 90, 8)
    _synced_start(w, [btc, eth])
    w.server_sends(btc.move(), eth.move(), note="one window, two pairs, ordered by pair")
    w.expect({BTC: btc.expected(), ETH: eth.expected()}, deltas=2)
    frame = [btc.move(), btc.move(), eth.move(), {"type": "notice"}, btc.move()]
    w.server_sends(*frame, note="a gateway that fell behind packs several windows; in order they chain")
    w.expect({BTC: btc.expected(), ETH: eth.expected()}, deltas=4)
    w.server_sends_raw("[" + encode(eth.move()) + "]", note="an array of one message")
    w.expect({ETH: eth.expected()}, deltas=1)
    w.expect_quiet()
    return w


def gap() -> CaseWriter:
    w = CaseWriter(
        "gap",
        "A delta that skips a seq: the pair goes unsynced, one resync is sent, deltas are ignored until "
        "the snapshot, which syncs it again; the stream continues from the snapshot.",
        [BTC],
    )
    btc = Source.with_depth(BTC, "g1", 100, 10)
    _synced_start(w, [btc])
    w.server_sends(btc.move())
    w.expect({BTC: btc.expected()}, deltas=1)
    btc.move()  # lost: the client never sees seq 102
    w.server_sends(btc.move(), note="seq 103 after 101: a gap")
    w.expect({BTC: unsynced()}, gaps=1, resyncs=1)
    w.client_sends({"op": "resync", "pair": BTC}, note="one resync")
    w.server_sends(btc.move(), note="still waiting: ignored, not asked again yet")
    w.expect({BTC: unsynced()}, ignored_deltas=1)
    w.server_sends(btc.snapshot(), note="the answer to the resync")
    w.expect({BTC: btc.expected()}, snapshots=1)
    w.server_sends(btc.move())
    w.expect({BTC: btc.expected()}, deltas=1)
    w.expect_quiet()
    return w


def new_epoch() -> CaseWriter:
    w = CaseWriter(
        "new_epoch",
        "A delta of another epoch (the source restarted its stream): seqs are not comparable, so it is a "
        "resync even though its seq looks old; the snapshot of the new epoch syncs the pair again.",
        [BTC],
    )
    btc = Source.with_depth(BTC, "epoch-a", 100, 10)
    _synced_start(w, [btc])
    w.server_sends(btc.move())
    w.expect({BTC: btc.expected()}, deltas=1)
    btc.new_epoch("epoch-b", 0)
    w.server_sends(btc.move(), note="epoch-b seq 1: a new epoch")
    w.expect({BTC: unsynced()}, gaps=1, resyncs=1)
    w.client_sends({"op": "resync", "pair": BTC})
    w.server_sends(btc.snapshot())
    w.expect({BTC: btc.expected()}, snapshots=1)
    w.server_sends(btc.move())
    w.expect({BTC: btc.expected()}, deltas=1)
    w.expect_quiet()
    return w


def checksum_mismatch() -> CaseWriter:
    w = CaseWriter(
        "checksum_mismatch",
        "A delta whose book does not hash to its checksum, then a snapshot that does not either: each "
        "is a resync; the next good snapshot syncs the pair.",
        [BTC],
    )
    btc = Source.with_depth(BTC, "c1", 10, 10)
    _synced_start(w, [btc])
    bad = btc.move()
    bad["checksum"] = (bad["checksum"] + 1) % 2**32
    w.server_sends(bad, note="the levels are right, the checksum is not")
    w.expect({BTC: unsynced()}, checksum_failures=1, resyncs=1)
    w.client_sends({"op": "resync", "pair": BTC})
    snap = btc.snapshot()
    snap["bids"] = snap["bids"][1:]  # a level missing: its checksum cannot match
    w.server_sends(snap, note="a snapshot missing its best bid")
    w.expect({BTC: unsynced()}, checksum_failures=1, resyncs=1)
    w.client_sends({"op": "resync", "pair": BTC})
    w.server_sends(btc.snapshot())
    w.expect({BTC: btc.expected()}, snapshots=1)
    w.server_sends(btc.move())
    w.expect({BTC: btc.expected()}, deltas=1)
    w.expect_quiet()
    return w


def stale_delta() -> CaseWriter:
    w = CaseWriter(
        "stale_delta",
        "Deltas at or below the book's seq (a repeat, an older one) are ignored without a resync.",
        [BTC],
    )
    btc = Source.with_depth(BTC, "s1", 200, 10)
    _synced_start(w, [btc])
    first = btc.move()
    second = btc.move()
    w.server_sends(first)
    w.server_sends(second)
    w.expect({BTC: btc.expected()}, deltas=2)
    w.server_sends(second, note="seq 202 again")
    w.expect({BTC: btc.expected()}, stale_deltas=1)
    w.server_sends(first, note="seq 201: older")
    w.expect({BTC: btc.expected()}, stale_deltas=1)
    w.expect_quiet("stale deltas are not gaps")
    w.server_sends(btc.move())
    w.expect({BTC: btc.expected()}, deltas=1)
    return w


def duplicate_after_snapshot() -> CaseWriter:
    w = CaseWriter(
        "duplicate_after_snapshot",
        "Deltas the snapshot already includes (seq <= its seq, still in flight when it was taken) are "
        "ignored: once after the first snapshot, once after a resync's snapshot.",
        [BTC],
    )
    btc = Source.with_depth(BTC, "d1", 300, 10)
    included = btc.move()  # seq 301, part of the snapshot below
    _synced_start(w, [btc])
    w.server_sends(included, note="the snapshot's own seq: a duplicate")
    w.expect({BTC: btc.expected()}, stale_deltas=1)
    w.server_sends(btc.move())
    w.expect({BTC: btc.expected()}, deltas=1)
    btc.move()
    in_flight = [btc.move(), btc.move()]  # 304, 305
    w.server_sends(in_flight[0], note="303 lost: a gap")
    w.expect({BTC: unsynced()}, gaps=1, resyncs=1)
    w.client_sends({"op": "resync", "pair": BTC})
    w.server_sends(btc.snapshot(), in_flight[1], note="the snapshot at 305, then 305 itself, in flight")
    w.expect({BTC: btc.expected()}, snapshots=1, stale_deltas=1)
    w.server_sends(btc.move())
    w.expect({BTC: btc.expected()}, deltas=1)
    w.expect_quiet()
    return w


def since_recovered() -> CaseWriter:
    w = CaseWriter(
        "since_recovered",
        "The gateway closes the connection (1011); the client reconnects with since = each synced "
        "book's position, the gateway replays what was missed (recovered: true) and the books continue "
        "without snapshots.",
        [BTC, ETH],
    )
    btc = Source.with_depth(BTC, "r1", 50, 10)
    eth = Source.with_depth(ETH, "r2", 60, 10)
    _synced_start(w, [btc, eth])
    w.server_sends(btc.move(), eth.move())
    w.expect({BTC: btc.expected(), ETH: eth.expected()}, deltas=2)
    w.server_closes(1011, "internal error")
    w.expect({BTC: btc.expected(), ETH: eth.expected()}, note="a synced book stays synced while away")
    since = {BTC: {"epoch": btc.epoch, "seq": btc.seq}, ETH: {"epoch": eth.epoch, "seq": eth.seq}}
    missed = [btc.move(), btc.move(), btc.move(), eth.move()]
    w.accept(0)
    w.client_sends({"op": "subscribe", "pairs": [BTC, ETH], "since": since}, "sub2")
    w.server_sends(_subscribed([BTC, ETH], "sub2", recovered=True), *missed, note="the replay")
    w.expect({BTC: btc.expected(), ETH: eth.expected()}, deltas=4, recoveries=1, reconnects=1)
    w.server_sends(btc.move(), eth.move(), note="live deltas continue")
    w.expect({BTC: btc.expected(), ETH: eth.expected()}, deltas=2)
    w.expect_quiet()
    return w


def since_not_recovered() -> CaseWriter:
    w = CaseWriter(
        "since_not_recovered",
        "The connection drops (no close frame); the client reconnects with since; the gateway replays "
        "one pair but cannot recover the other (its epoch changed meanwhile): recovered: false, a "
        "snapshot for that pair, the other continued by its deltas.",
        [BTC, ETH],
    )
    btc = Source.with_depth(BTC, "n1", 70, 10)
    eth = Source.with_depth(ETH, "n2", 80, 10)
    _synced_start(w, [btc, eth])
    w.server_sends(btc.move(), eth.move())
    w.expect({BTC: btc.expected(), ETH: eth.expected()}, deltas=2)
    w.step("server_drops", "the TCP connection ends without a close frame (the client sees 1006)")
    since = {BTC: {"epoch": btc.epoch, "seq": btc.seq}, ETH: {"epoch": eth.epoch, "seq": eth.seq}}
    replay = [btc.move(), btc.move()]
    eth.new_epoch("n2-restarted", 3)
    eth.move()
    w.accept(0)
    w.client_sends({"op": "subscribe", "pairs": [BTC, ETH], "since": since}, "sub2")
    w.server_sends(_subscribed([BTC, ETH], "sub2", recovered=False), *replay, eth.snapshot())
    w.expect({BTC: btc.expected(), ETH: eth.expected()}, deltas=2, snapshots=1, reconnects=1)
    w.server_sends(btc.move(), eth.move())
    w.expect({BTC: btc.expected(), ETH: eth.expected()}, deltas=2)
    w.expect_quiet()
    return w


def subscribe_refused() -> CaseWriter:
    w = CaseWriter(
        "subscribe_refused",
        "A pair subscribed at run time is refused (unknown_pair): it is refused and not synced, asked "
        "for neither by resync nor again at once; a delta of it is ignored; the other pair is untouched.",
        [BTC],
    )
    btc = Source.with_depth(BTC, "u1", 10, 10)
    sol = Source.with_depth(SOL, "u2", 10, 10)
    _synced_start(w, [btc])
    w.client_subscribes([SOL], "the program follows one more pair")
    w.client_sends({"op": "subscribe", "pairs": [SOL], "since": None}, "sub2")
    w.server_sends(
        {
            "type": "error",
            "code": "unknown_pair",
            "message": "not offered here: SOL-USD",
            "id": id_ref("sub2"),
        }
    )
    w.expect({BTC: btc.expected(), SOL: unsynced("unknown_pair")}, subscribe_refusals=1, errors=1)
    w.server_sends(sol.move(), btc.move(), note="a stray delta of the refused pair is ignored")
    w.expect({BTC: btc.expected(), SOL: unsynced("unknown_pair")}, deltas=1, ignored_deltas=1)
    w.expect_quiet("no resync of a refused pair, no retry at once")
    return w


def subscribe_refused_too_many() -> CaseWriter:
    w = CaseWriter(
        "subscribe_refused_too_many",
        "The first subscribe is refused as a whole (too_many_pairs): every pair of it is refused.",
        [BTC, ETH],
    )
    w.accept(0)
    w.client_sends({"op": "subscribe", "pairs": [BTC, ETH], "since": None}, "sub")
    w.server_sends(
        {
            "type": "error",
            "code": "too_many_pairs",
            "message": "at most 1 pair per connection",
            "id": id_ref("sub"),
        }
    )
    w.expect(
        {BTC: unsynced("too_many_pairs"), ETH: unsynced("too_many_pairs")}, subscribe_refusals=1, errors=1
    )
    w.expect_quiet()
    return w


def _close_case(name: str, code: int, reason: str, description: str, urls: int) -> CaseWriter:
    w = CaseWriter(name, description, [BTC], urls=urls)
    btc = Source.with_depth(BTC, f"x{code}", 1000, 10)
    _synced_start(w, [btc])
    w.server_sends(btc.move())
    w.expect({BTC: btc.expected()}, deltas=1)
    if code == 1008:
        w.server_sends(
            {"type": "error", "code": "rate_limited", "message": "more than 20 ops/s", "id": None},
            note="the gateway says why, then closes",
        )
        w.expect({BTC: btc.expected()}, errors=1)
    w.server_closes(code, reason)
    since = {BTC: {"epoch": btc.epoch, "seq": btc.seq}}
    missed = btc.move()
    w.accept(1 if code == 1001 else 0, "another gateway" if code == 1001 else "the same URL again")
    w.client_sends({"op": "subscribe", "pairs": [BTC], "since": since}, "sub2")
    w.server_sends(_subscribed([BTC], "sub2", recovered=True), missed)
    w.expect({BTC: btc.expected()}, deltas=1, recoveries=1, reconnects=1)
    w.expect_quiet()
    return w


def close_1001() -> CaseWriter:
    return _close_case(
        "close_1001", 1001, "server shutting down",
        "The gateway shuts down (1001): the client reconnects to the next URL it was given, with since.",
        urls=2,
    )  # fmt: skip


def close_4008() -> CaseWriter:
    return _close_case(
        "close_4008", 4008, "too slow",
        "The gateway closes a client too slow to read (4008): it reconnects, with since.", urls=1,
    )  # fmt: skip


def close_1008() -> CaseWriter:
    return _close_case(
        "close_1008", 1008, "rate limited",
        "rate_limited, then close 1008 (policy violation): the client reconnects (after a longer "
        "backoff) to the same URL, with since; the error unsyncs nothing.",
        urls=1,
    )  # fmt: skip


CRAFTED: list[Callable[[], CaseWriter]] = [
    normal_stream, packed_frames, gap, new_epoch, checksum_mismatch, stale_delta, duplicate_after_snapshot,
    since_recovered, since_not_recovered, subscribe_refused, subscribe_refused_too_many,
    close_1001, close_4008, close_1008,
]  # fmt: skip


def crafted() -> dict[Path, str]:
    out: dict[Path, str] = {}
    for make in CRAFTED:
        w = make()
        out[CASES / f"{w.header['name']}.jsonl"] = w.text()
    return out


# --- recording a real run ------------------------------------------------------------------


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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare the crafted cases with the files")
    parser.add_argument("--record", metavar="URL", help="record recorded_stream.jsonl from a running gateway")
    parser.add_argument("--pairs", default="BTC-USD,ETH-USD")
    parser.add_argument("--frames", type=int, default=40, help="frames to record before the reconnect")
    parser.add_argument("--pause", type=float, default=1.5, help="seconds away before the reconnect")
    args = parser.parse_args()
    if args.record:
        case = asyncio.run(record(args.record, args.pairs.split(","), args.frames, args.pause))
        target = CASES / "recorded_stream.jsonl"
        target.write_text(case.text())
        print(f"wrote {target} ({len(case.steps)} steps)")
        return 0
    stale = []
    for path, text in crafted().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            CASES.mkdir(exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"not what generate.py writes: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
