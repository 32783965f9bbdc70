"""A real stream of encoded deltas for gateway tests, built with mdcore only (no md_service)."""

from __future__ import annotations

from mdcore.book import ASK, BID, OrderBook
from mdcore.codec import encode_delta
from mdcore.instruments import instrument
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, Snapshot
from mdcore.wire_format import book_checksum


class Stream:
    """``windows`` deltas of one pair; ``book_at(s)`` is the verified book after delta s."""

    def __init__(self, pair: str, windows: int, epoch: str = "1-abc") -> None:
        self.pair, self.epoch = pair, epoch
        inst = instrument(pair)
        book = OrderBook()
        self._deltas: list[bytes] = [b""]
        self._books: list[OrderBook] = [book.copy()]
        for seq in range(1, windows + 1):
            bid, ask = (1000 - seq % 4) * 100, (1001 + seq % 3) * 100
            book.set_level(BID, bid, seq * 10_000)
            book.set_level(ASK, ask, 0 if seq % 2 else seq * 10_000)
            fp, fq = inst.format_price, inst.format_qty
            delta = Delta(
                pair, epoch, seq, seq, seq,
                [(fp(bid), fq(book.qty(BID, bid)))], [(fp(ask), fq(book.qty(ASK, ask)))],
                book_checksum(book, inst),
            )  # fmt: skip
            self._deltas.append(encode_delta(delta))
            self._books.append(book.copy())

    def delta(self, seq: int) -> bytes:
        return self._deltas[seq]

    def book_at(self, seq: int) -> LocalBook:
        local = LocalBook(self.pair)
        inst = local.instrument
        book = self._books[seq]
        bids = [(inst.format_price(p), inst.format_qty(q)) for p, q in book.iter_side(BID)]
        asks = [(inst.format_price(p), inst.format_qty(q)) for p, q in book.iter_side(ASK)]
        local.load_snapshot(Snapshot(self.pair, self.epoch, seq, seq, bids, asks, book_checksum(book, inst)))
        return local
