"""PairStream: events in, one coalesced, sequenced, verifiable delta per window out."""

from __future__ import annotations

import re

from md_service.pair_stream import EventOutcome, PairStream, new_epoch
from md_service.window_script import ARGS_PER_PAIR, KEYS_PER_PAIR, WRITE_WINDOW_LUA, window_script_args
from mdcore.codec import decode_delta, decode_snapshot
from mdcore.events import ExchangeEvent
from mdcore.local_book import LocalBook
from mdcore.redis_layout import DELTA_FIELD, RedisLayout

PAIR = "BTC-USD"


def event(xseq: int, *changes: tuple[str, int, int], xts: int = 1_000) -> ExchangeEvent:
    return ExchangeEvent(PAIR, xseq, xts + xseq, tuple(changes))


def test_window_coalesces_to_last_value_and_numbers_deltas_plus_one() -> None:
    stream = PairStream(PAIR, "e1")
    stream.apply(event(1, ("b", 100_00, 5), ("a", 101_00, 7)))
    stream.apply(event(2, ("b", 100_00, 9), ("b", 99_00, 1)))
    stream.apply(event(3, ("b", 99_00, 0)))  # added and removed inside the window: no entry
    out = stream.close_window(now_ns=5_000, snapshot_every=10)
    assert out is not None and out.seq == 1 and out.xseq == 3
    delta = decode_delta(out.delta)
    assert delta.bids == [["100.00", "0.00009"]] and delta.asks == [["101.00", "0.00007"]]
    assert delta.ts == 5_000 and delta.xts == 1_001  # earliest exchange time in the window
    stream.apply(event(4, ("a", 101_00, 0)))
    second = stream.close_window(now_ns=6_000, snapshot_every=10)
    assert second is not None and second.seq == 2 and second.snapshot is None
    assert decode_delta(second.delta).asks == [["101.00", "0.00000"]]


def test_empty_or_net_zero_window_publishes_nothing_and_consumes_no_seq() -> None:
    stream = PairStream(PAIR, "e1")
    assert stream.close_window(1, 10) is None
    stream.apply(event(1, ("b", 100_00, 5), ("b", 100_00, 0)))
    assert stream.close_window(2, 10) is None
    assert stream.seq == 0


def test_redelivered_events_are_skipped_and_exchange_gaps_counted() -> None:
    stream = PairStream(PAIR, "e1", seq=4, xseq=10)
    assert stream.apply(event(10, ("b", 1, 1))) is EventOutcome.DUPLICATE
    assert stream.apply(event(9, ("b", 1, 1))) is EventOutcome.DUPLICATE
    assert stream.book.depth("b") == 0
    assert stream.apply(event(11, ("b", 1, 1))) is EventOutcome.APPLIED
    assert stream.apply(event(15, ("b", 2, 1))) is EventOutcome.APPLIED_AFTER_GAP
    assert stream.xseq == 15


def test_deltas_and_periodic_snapshots_rebuild_the_same_book() -> None:
    stream = PairStream(PAIR, new_epoch(1_795_000_000_000_000_000))
    client = LocalBook(PAIR)
    snapshots = 0
    for i in range(1, 40):
        stream.apply(event(i, ("b", 100_00 - (i % 7), i), ("a", 101_00 + (i % 5), 0 if i % 3 == 0 else i)))
        out = stream.close_window(now_ns=i, snapshot_every=10)
        assert out is not None
        if out.snapshot is not None:
            snapshots += 1
            snap = decode_snapshot(out.snapshot)
            assert snap.seq == out.seq and snap.checksum == decode_delta(out.delta).checksum
            if not client.synced:
                client.load_snapshot(snap)
                continue
        if client.synced:
            assert client.apply_delta(decode_delta(out.delta))  # verifies the checksum too
    assert snapshots == 4  # seq 1, 11, 21, 31
    assert client.book == stream.book and client.seq == stream.seq


def test_epoch_sorts_by_creation_time() -> None:
    older, newer = new_epoch(1_000_000_000_000), new_epoch(2_000_000_000_000)
    assert int(older.split("-")[0]) < int(newer.split("-")[0])


def test_script_constants_match_the_lua_source() -> None:
    assert f"/ {ARGS_PER_PAIR}" in WRITE_WINDOW_LUA and f"* {ARGS_PER_PAIR}" in WRITE_WINDOW_LUA
    assert f"* {KEYS_PER_PAIR}" in WRITE_WINDOW_LUA
    assert f"'{DELTA_FIELD.decode()}'" in WRITE_WINDOW_LUA
    stream = PairStream(PAIR, "e1")
    stream.apply(event(1, ("b", 100_00, 5)))
    out = stream.close_window(1, 10)
    assert out is not None
    keys, argv = window_script_args(RedisLayout("p"), [out, out], history=600)
    assert len(keys) == 2 * KEYS_PER_PAIR and len(argv) == 2 + 2 * ARGS_PER_PAIR
    assert re.fullmatch(r"p:state:BTC-USD", keys[0])
