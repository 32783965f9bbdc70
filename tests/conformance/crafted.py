"""The crafted conformance cases: one function per behaviour a client must get right.

Each case is written from :class:`~tests.conformance.kit.Source` books (mdcore computes every
snapshot, delta and checksum), so it comes out the same every time: ``python -m
tests.conformance.generate`` writes them to ``cases/`` and a test checks the committed files
against :func:`crafted`. A new case is a function here, added to ``CRAFTED``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conformance.kit import CASES, CaseWriter, Source, encode, id_ref, unsynced

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
    """Every crafted case file's path and the text it must hold."""
    out: dict[Path, str] = {}
    for make in CRAFTED:
        w = make()
        out[CASES / f"{w.header['name']}.jsonl"] = w.text()
    return out
