"""A warm takeover continues every stored stream at S+1, from the follower's own (newer) book.

A writer and a follower apply the same events; they cut their windows at different moments,
and the writer dies with a window it never wrote. A client holds what the writer published.
"""

from __future__ import annotations

import random

from md_service.handover import continue_warm, why_cold
from md_service.pair_stream import PairStream
from mdcore.codec import decode_delta, decode_snapshot
from mdcore.local_book import LocalBook
from mdcore.messages import Snapshot
from mdcore.redis_layout import StoredState

PAIR = "BTC-USD"


def events(seed: int, count: int) -> list[list[tuple[str, int, int]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        changes = []
        for _ in range(rng.randint(1, 4)):
            side = rng.choice("ba")
            price = 100_00 - rng.randint(1, 40) if side == "b" else 100_00 + rng.randint(1, 40)
            changes.append((side, price, 0 if rng.random() < 0.3 else rng.randint(1, 9) * 100_000))
        out.append(changes)
    return out


def client_of(stream: PairStream, outs: list) -> LocalBook:
    """What a client holds after the writer's published deltas (checksums verified)."""
    book = LocalBook(PAIR)
    book.load_snapshot(Snapshot(PAIR, stream.epoch, 0, 0, [], [], 0))
    for out in outs:
        assert book.apply_delta(decode_delta(out.delta))
    return book


def test_the_first_delta_takes_a_client_from_the_stored_book_to_the_followers() -> None:
    writer, follower = PairStream(PAIR, "e1", stored=None), PairStream(PAIR, "other", stored=None)
    writer.full_next = True
    rng = random.Random(3)
    published = []
    for xseq, changes in enumerate(events(1, 200), start=1):
        writer.apply(xseq, xseq, changes)
        follower.apply(xseq, xseq, changes)
        if xseq < 150 and xseq % 7 == 0:  # the writer's windows; it dies at 150 with one open
            out = writer.close_window(xseq, 50)
            if out is not None and out.delta:
                writer.confirm(out)
                published.append(out)
        if rng.random() < 0.2:  # the follower cuts windows of its own, never written
            follower.discard_window()
    client = client_of(writer, published)
    seq = client.seq
    stored = {PAIR: (StoredState("e1", seq, writer.stored_xseq, seq), client_of(writer, published))}
    streams = {PAIR: follower}
    assert why_cold(streams, position=200, cold=False, stored_offset=150, stored=stored) is None
    assert continue_warm(streams, stored, lambda: "new") == []
    out = follower.close_window(10**9, 50)
    assert out is not None and (out.epoch, out.seq, out.expect) == ("e1", seq + 1, ("e1", seq))
    assert client.apply_delta(decode_delta(out.delta))  # checksum verified against the follower's book
    assert client.book == follower.book
    follower.confirm(out)
    follower.apply(201, 201, [("b", 99_00, 1)])
    after = follower.close_window(10**9 + 1, 50)
    assert after is not None and after.seq == seq + 2 and client.apply_delta(decode_delta(after.delta))


def test_equal_books_publish_nothing_and_keep_the_seq() -> None:
    stream = PairStream(PAIR, "mine")
    stream.apply(1, 1, [("b", 100_00, 5)])
    stored = LocalBook(PAIR)
    stored.load_snapshot(Snapshot(PAIR, "e1", 9, 0, [["100.00", "0.00005"]], [], 0), verify=False)
    continue_warm({PAIR: stream}, {PAIR: (StoredState("e1", 9, 1, 9), stored)}, lambda: "new")
    out = stream.close_window(5, 50, check=True)
    assert out is not None and out.delta == b"" and (out.seq, out.expect) == (9, ("e1", 9))


def test_a_pair_redis_has_nothing_of_starts_a_new_stream_with_its_whole_book() -> None:
    stream = PairStream(PAIR, "provisional")
    stream.apply(1, 1, [("a", 101_00, 3)])
    assert continue_warm({PAIR: stream}, {}, lambda: "fresh") == [PAIR]
    out = stream.close_window(5, 50)
    assert out is not None and (out.epoch, out.seq, out.expect) == ("fresh", 1, None)
    assert out.snapshot is not None and decode_snapshot(out.snapshot).asks == [["101.00", "0.00003"]]


def test_books_that_miss_what_redis_holds_go_cold() -> None:
    stream = PairStream(PAIR, "mine", xseq=10)
    stored_book = LocalBook(PAIR)
    stored_book.load_snapshot(Snapshot(PAIR, "e1", 3, 0, [], [], 0))
    stored = {PAIR: (StoredState("e1", 3, 12, 3), stored_book)}
    streams = {PAIR: stream}
    assert "behind the stored 12" in why_cold(streams, 100, False, 90, stored)
    ahead = {PAIR: (StoredState("e1", 3, 8, 3), stored_book)}
    assert why_cold(streams, 100, False, 90, ahead) is None
    assert "behind the stored 90" in why_cold(streams, 80, False, 90, ahead)  # not read as far
    assert "missed events" in why_cold(streams, 100, True, 90, ahead)
    assert "no book" in why_cold({}, 100, False, 90, ahead)
    assert "does not add up" in why_cold(streams, 100, False, 90, {PAIR: (StoredState("e1", 3, 8, 3), None)})
