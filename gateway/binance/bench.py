"""``python -m gateway.binance.bench``: what the Binance dialect costs per delta, against a baseline.

The dialect encodes each delta once more than the native protocol does (8-decimal strings,
Binance field names) and folds it into the 1000 ms event; combined streams add a byte
concatenation per stream name. Measured in one run, medians over repeats, against the
baseline of the same run: ``mdcore.codec.encode_delta``, the encoding md_service does once
per window. REST depth is measured against the native snapshot encoding of the same book.
The machine is shared and noisy: read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable

from gateway.binance.events import wrap_combined
from gateway.binance.feed import PairFeed
from gateway.binance.rest import BinanceRest
from gateway.binance.symbols import SymbolInfo, SymbolTable
from gateway.binance.update_ids import UpdateIds
from mdcore.book import ASK, BID, OrderBook
from mdcore.codec import encode_delta, encode_snapshot
from mdcore.instruments import instrument
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, Snapshot
from mdcore.wire_format import book_checksum

PAIR = "BTC-USD"
EPOCH = "1732190400000-bench0"


def _deltas(count: int, levels: int, rng: random.Random) -> list[Delta]:
    inst = instrument(PAIR)
    fp, fq = inst.format_price, inst.format_qty
    out = []
    for seq in range(1, count + 1):
        bids = [(fp(6_400_000 - rng.randint(0, 500)), fq(rng.randint(0, 10**6))) for _ in range(levels)]
        asks = [(fp(6_400_001 + rng.randint(0, 500)), fq(rng.randint(0, 10**6))) for _ in range(levels)]
        ts = 1_732_190_400_000_000_000 + seq * 100_000_000
        out.append(Delta(PAIR, EPOCH, seq, ts, ts, bids, asks, 0))
    return out


def _book(levels: int) -> LocalBook:
    inst = instrument(PAIR)
    book = OrderBook()
    for i in range(levels):
        book.set_level(BID, 6_400_000 - i, 10_000 + i)
        book.set_level(ASK, 6_400_001 + i, 20_000 + i)
    fp, fq = inst.format_price, inst.format_qty
    local = LocalBook(PAIR)
    snap = Snapshot(
        PAIR, EPOCH, 1, 0,
        [(fp(p), fq(q)) for p, q in book.iter_side(BID)], [(fp(p), fq(q)) for p, q in book.iter_side(ASK)],
        book_checksum(book, inst),
    )  # fmt: skip
    local.load_snapshot(snap)
    return local


def _median_us(run: Callable[[], None], ops: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        run()
        samples.append((time.perf_counter_ns() - start) / ops / 1000)
    return statistics.median(samples)


def measure(windows: int, levels: int, repeats: int) -> dict[str, float]:
    rng = random.Random(7)
    deltas = _deltas(windows, levels, rng)
    info = SymbolInfo.of(PAIR)
    results: dict[str, float] = {}

    def baseline() -> None:
        for delta in deltas:
            encode_delta(delta)

    def dialect() -> None:
        feed = PairFeed(info, UpdateIds(lambda: 0))
        for delta in deltas:
            feed.on_delta(delta)
        feed.flush_slow()

    event = PairFeed(info, UpdateIds(lambda: 0)).on_delta(deltas[0]).fast

    def wrap() -> None:
        for _ in range(windows):
            wrap_combined(b"btcusd@depth@100ms", event)

    results["native_encode_delta_us"] = _median_us(baseline, windows, repeats)
    results["binance_on_delta_us"] = _median_us(dialect, windows, repeats)
    results["combined_wrap_us"] = _median_us(wrap, windows, repeats)
    rest = BinanceRest(10**12, lambda: 0)
    table = SymbolTable([PAIR])
    local = _book(5000)
    for limit in (100, 5000):
        query = rest.handle("/api/v3/depth", f"symbol=BTCUSD&limit={limit}", "bench", table)
        assert not hasattr(query, "status")
        calls = max(1, 2000 // limit)
        results[f"native_snapshot_{limit}_us"] = _median_us(
            lambda limit=limit, calls=calls: [
                encode_snapshot(local.to_snapshot(limit)) for _ in range(calls)
            ],
            calls,
            repeats,
        )
        results[f"binance_depth_{limit}_us"] = _median_us(
            lambda query=query, calls=calls: [rest.depth(query, local, 1) for _ in range(calls)],  # type: ignore[arg-type]
            calls,
            repeats,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.binance.bench", description=__doc__)
    parser.add_argument("--windows", type=int, default=5000, help="deltas per repeat (default 5000)")
    parser.add_argument("--levels", type=int, default=5, help="levels a side per delta (default 5)")
    parser.add_argument("--repeats", type=int, default=7, help="repeats; the median is reported (default 7)")
    args = parser.parse_args(argv)
    r = measure(args.windows, args.levels, args.repeats)
    base = r["native_encode_delta_us"]
    print(f"per delta ({args.levels} levels a side), median of {args.repeats} x {args.windows}:")
    rows = [
        ("native encode_delta (baseline)", base),
        ("binance on_delta (100ms + fold)", r["binance_on_delta_us"]),
        ("combined wrap, per stream name", r["combined_wrap_us"]),
    ]
    for label, value in rows:
        print(f"  {label:<33} {value:8.2f} us   x{value / base:.2f}")
    for limit in (100, 5000):
        native, binance = r[f"native_snapshot_{limit}_us"], r[f"binance_depth_{limit}_us"]
        print(f"REST depth limit={limit}: native snapshot {native:9.1f} us, binance {binance:9.1f} us   "
              f"x{binance / native:.2f}")  # fmt: skip
    print(json.dumps({"benchmark": "binance", **{k: round(v, 3) for k, v in r.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
