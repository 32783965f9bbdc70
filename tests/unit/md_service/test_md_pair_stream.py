"""PairStream: events in, one coalesced, sequenced, verifiable delta per window out."""

from __future__ import annotations

from itertools import pairwise

from md_service.pair_stream import EventOutcome, PairStream, new_epoch
from mdcore.codec import decode_delta, decode_snapshot
from mdcore.local_book import LocalBook
from mdcore.messages import Snapshot

PAIR = "BTC-USD"


def apply(stream: PairStream, xseq: int, *changes: tuple[str, int, int], xts: int = 1_000) -> EventOutcome:
    return stream.apply(xseq, xts + xseq, list(changes))


def test_window_coalesces_to_last_value_and_numbers_deltas_plus_one() -> None:
    stream = PairStream(PAIR, "e1", stored=("e1", 0))
    apply(stream, 1, ("b", 100_00, 5), ("a", 101_00, 7))
    apply(stream, 2, ("b", 100_00, 9), ("b", 99_00, 1))
    apply(stream, 3, ("b", 99_00, 0))  # added and removed inside the window: no entry
    out = stream.close_window(now_ns=5_000, snapshot_every=10)
    assert out is not None and out.seq == 1 and out.xseq == 3 and out.expect == ("e1", 0)
    delta = decode_delta(out.delta)
    assert delta.bids == [["100.00", "0.00009"]] and delta.asks == [["101.00", "0.00007"]]
    assert delta.ts == 5_000 and delta.xts == 1_001  # earliest exchange time in the window
    stream.confirm(out)
    apply(stream, 4, ("a", 101_00, 0))
    second = stream.close_window(now_ns=6_000, snapshot_every=10)
    assert second is not None and second.seq == 2 and second.snapshot is None
    assert second.expect == ("e1", 1)  # what the first write left in Redis
    assert decode_delta(second.delta).asks == [["101.00", "0.00000"]]


def test_empty_window_publishes_nothing_and_consumes_no_seq() -> None:
    stream = PairStream(PAIR, "e1", stored=("e1", 0))
    assert stream.close_window(1, 10) is None
    assert stream.seq == 0


def test_net_zero_window_writes_only_the_xseq() -> None:
    stream = PairStream(PAIR, "e1", seq=3, xseq=7, stored=("e1", 3))
    apply(stream, 8, ("b", 100_00, 5), ("b", 100_00, 0))
    out = stream.close_window(2, 10)
    assert out is not None and out.delta == b"" and out.snapshot is None
    assert (out.seq, out.xseq, out.expect) == (3, 8, ("e1", 3))
    stream.confirm(out)
    assert stream.close_window(3, 10) is None  # nothing new: nothing to write


def test_check_window_confirms_the_stored_state_of_a_quiet_pair() -> None:
    stream = PairStream(PAIR, "e1", seq=3, xseq=7, stored=("e1", 3))
    out = stream.close_window(2, 10, check=True)
    assert out is not None and out.delta == b"" and out.expect == ("e1", 3)


def test_a_stream_redis_does_not_hold_gets_no_state_only_write() -> None:
    # A state hash without a snapshot would be unreadable, so a new pair waits for a real delta.
    stream = PairStream(PAIR, "e1")
    apply(stream, 1, ("b", 100_00, 5), ("b", 100_00, 0))
    assert stream.close_window(2, 10, check=True) is None


def test_redelivered_late_and_gapped_events() -> None:
    stream = PairStream(PAIR, "e1", seq=4, xseq=10)
    assert apply(stream, 10, ("b", 1, 1)) is EventOutcome.DUPLICATE
    assert apply(stream, 9, ("b", 1, 1)) is EventOutcome.DUPLICATE
    assert stream.book.depth("b") == 0
    assert apply(stream, 11, ("b", 1, 1)) is EventOutcome.APPLIED
    assert apply(stream, 15, ("b", 2, 1)) is EventOutcome.APPLIED_AFTER_GAP
    assert stream.missing == [(12, 14)]
    # 13 arrives after 15: reordered. Applying it now would put an old quantity back.
    assert apply(stream, 13, ("b", 2, 9)) is EventOutcome.LATE
    assert stream.missing == [(12, 12), (14, 14)]
    assert apply(stream, 13, ("b", 2, 9)) is EventOutcome.DUPLICATE  # a second copy is a duplicate
    assert stream.book.qty("b", 2) == 1 and stream.xseq == 15


def test_deltas_and_periodic_snapshots_rebuild_the_same_book() -> None:
    stream = PairStream(PAIR, new_epoch(1_795_000_000_000_000_000))
    stream.full_next = True
    client = LocalBook(PAIR)
    snapshot_seqs = []
    for i in range(1, 40):
        apply(stream, i, ("b", 100_00 - (i % 7), i), ("a", 101_00 + (i % 5), 0 if i % 3 == 0 else i))
        out = stream.close_window(now_ns=i, snapshot_every=10)
        assert out is not None
        stream.confirm(out)
        if out.snapshot is not None:  # only the stream's first delta carries one inline
            snapshot_seqs.append(out.seq)
            snap = decode_snapshot(out.snapshot)
            assert snap.seq == out.seq == 1 and snap.checksum == decode_delta(out.delta).checksum
            client.load_snapshot(snap)
            continue
        later = stream.due_snapshot(now_ns=i)  # written after the window, when due
        if later is not None:
            snapshot_seqs.append(out.seq)
            stream.snapshot_written(out.seq)
            snap = decode_snapshot(later)
            assert snap.seq == out.seq and snap.checksum == decode_delta(out.delta).checksum
        assert client.apply_delta(decode_delta(out.delta))  # verifies the checksum too
    gaps = [b - a for a, b in pairwise(snapshot_seqs)]
    assert snapshot_seqs[0] == 1 and len(snapshot_seqs) >= 4 and max(gaps) <= 10
    assert client.book == stream.book and client.seq == stream.seq


def test_snapshots_of_different_pairs_fall_in_different_windows() -> None:
    phases = set()
    for pair in ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD", "DOT-USD", "LTC-USD"):
        stream = PairStream(pair, "e", seq=20, snap_seq=20, stored=("e", 20))
        for i in range(21, 31):
            stream.apply(i, i, [("b", 1000 + i, 1)])
            stream.confirm(stream.close_window(i, 10))
            if stream.snap_due:
                phases.add(stream.seq % 10)
                break
    assert len(phases) >= 3  # not all at the same seq


def test_a_due_snapshot_waits_until_its_window_is_stored() -> None:
    stream = PairStream(PAIR, "e", seq=9, snap_seq=0, stored=("e", 9))
    apply(stream, 1, ("b", 100, 1))
    out = stream.close_window(1, 10)
    assert stream.snap_due and stream.due_snapshot(1) is None  # Redis does not hold seq 10 yet
    stream.confirm(out)
    assert decode_snapshot(stream.due_snapshot(1) or b"").seq == 10


def test_new_epoch_publishes_the_whole_book_at_once_even_if_quiet() -> None:
    stream = PairStream(PAIR, "old", seq=41, xseq=90, stored=("old", 41))
    apply(stream, 91, ("b", 100_00, 5), ("a", 101_00, 7), ("a", 102_00, 1))
    stream.close_window(1, 10)  # written as seq 42 ... and refused: Redis lost the stream
    stream.restart_epoch("new", replacing=None)
    out = stream.close_window(2, 10)  # no event since: the whole book goes out anyway
    assert out is not None and (out.epoch, out.seq, out.expect) == ("new", 1, None)
    delta, snap = decode_delta(out.delta), decode_snapshot(out.snapshot or b"")
    assert delta.bids == snap.bids == [["100.00", "0.00005"]]
    assert delta.asks == snap.asks == [["101.00", "0.00007"], ["102.00", "0.00001"]]
    client = LocalBook(PAIR)
    client.load_snapshot(snap)
    assert client.book == stream.book
    stream.confirm(out)
    assert stream.close_window(3, 10) is None


def test_epoch_sorts_by_creation_time() -> None:
    older, newer = new_epoch(1_000_000_000_000), new_epoch(2_000_000_000_000)
    assert int(older.split("-")[0]) < int(newer.split("-")[0])


def test_an_undone_close_gives_its_seq_and_its_changes_to_the_next_window() -> None:
    stream = PairStream(PAIR, "e", stored=("e", 0), snap_seq=0)
    apply(stream, 1, ("b", 100_00, 5))
    first = stream.close_window(1, 50)
    stream.confirm(first)
    apply(stream, 2, ("b", 100_00, 9), ("a", 101_00, 1))
    stream.close_window(2, 50)  # seq 2, but the write is given up on (a stop in a Redis outage)
    stream.abort_close(maybe_landed=False)
    assert stream.seq == 1 and stream.unsure is None
    apply(stream, 3, ("a", 101_00, 2), ("a", 102_00, 3))
    out = stream.close_window(3, 50)
    assert out is not None and (out.seq, out.expect) == (2, ("e", 1))  # no hole: seq 2 again
    assert decode_delta(out.delta).xts == 1_002  # the undone window's first event
    client = LocalBook(PAIR)
    client.load_snapshot(Snapshot(PAIR, "e", 0, 0, [], [], 0))  # the empty book before seq 1
    for raw in (first.delta, out.delta):
        client.apply_delta(decode_delta(raw))  # checksums verified: every change is in
    assert client.book == stream.book


def test_an_undone_close_that_may_have_landed_leaves_its_position_unsure() -> None:
    stream = PairStream(PAIR, "e", seq=4, stored=("e", 4), snap_seq=4)
    apply(stream, 1, ("b", 100_00, 5))
    stream.close_window(1, 50)
    stream.abort_close(maybe_landed=True)
    assert stream.unsure == ("e", 5) and stream.seq == 4
    out = stream.close_window(2, 50)
    assert out is not None and out.seq == 5
    stream.confirm(out)
    assert stream.unsure is None


def test_an_undone_first_close_of_an_epoch_publishes_the_whole_book_again() -> None:
    stream = PairStream(PAIR, "old", seq=7, stored=("old", 7), snap_seq=7)
    apply(stream, 1, ("b", 100_00, 5))
    stream.restart_epoch("new", replacing=("old", 7))
    stream.close_window(1, 50)
    stream.abort_close(maybe_landed=False)
    out = stream.close_window(2, 50)
    assert out is not None and (out.epoch, out.seq, out.expect) == ("new", 1, ("old", 7))
    assert out.snapshot is not None and decode_delta(out.delta).bids == [["100.00", "0.00005"]]


def test_a_due_snapshot_is_never_of_a_book_past_its_seq() -> None:
    stream = PairStream(PAIR, "e", seq=9, snap_seq=0, stored=("e", 9))
    apply(stream, 1, ("b", 100_00, 1))
    out = stream.close_window(1, 10)
    stream.confirm(out)
    assert stream.snap_due
    apply(stream, 2, ("b", 101_00, 1))  # the next window is open: the book is past seq 10
    assert stream.due_snapshot(1) is None
    stream.confirm(stream.close_window(2, 10))  # seq 11: the book is exactly at the stored seq again
    snap = decode_snapshot(stream.due_snapshot(2) or b"")
    assert snap.seq == 11 and snap.bids == [["101.00", "0.00001"], ["100.00", "0.00001"]]
