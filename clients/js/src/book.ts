/**
 * One pair's book at a stream position `(epoch, seq)`, with the rules of protocol.md
 * sections 5 and 6 enforced: the three-way seq rule and the checksum after every snapshot and
 * delta. The counterpart of mdcore/local_book.py.
 *
 * Each side is a pair of best-first parallel arrays of canonical strings (prices, quantities):
 * a level is found by binary search with {@link compareDecimal}, so prices are compared exactly
 * and the checksum reads the first 25 entries as they are, with nothing to format.
 */

import { checksumOfSides } from "./checksum.js";
import { canonical, compareDecimal, InvalidNumberError, zeroOf } from "./decimal.js";
import type { Instrument } from "./instruments.js";
import type { DeltaMessage, Levels, SnapshotMessage } from "./messages.js";

/** Where a message at `(epoch, seq)` stands relative to a book at `(lastEpoch, lastSeq)`. */
export type Verdict = "stale" | "next" | "gap";

/** The three-way rule (mdcore.sequencing.classify): a different epoch is always a gap. */
export function classify(lastEpoch: string | null, lastSeq: number, epoch: string, seq: number): Verdict {
  if (epoch !== lastEpoch) return "gap";
  if (seq <= lastSeq) return "stale";
  return seq === lastSeq + 1 ? "next" : "gap";
}

export class SequenceGapError extends Error {
  override name = "SequenceGapError";
}

export class ChecksumMismatchError extends Error {
  override name = "ChecksumMismatchError";
  constructor(
    readonly pair: string,
    readonly seq: number,
    readonly expected: number,
    readonly computed: number,
  ) {
    super(`${pair} seq ${seq}: checksum ${computed} != expected ${expected}`);
  }
}

export interface Level {
  readonly price: string;
  readonly qty: string;
}

/** One side: best-first prices and their quantities, canonical strings. */
class Side {
  prices: string[] = [];
  qtys: string[] = [];
  constructor(private readonly descending: boolean) {}

  /** Index of `price`, or -(insertion point) - 1 when absent. */
  find(price: string): number {
    const prices = this.prices;
    const sign = this.descending ? -1 : 1;
    let lo = 0;
    let hi = prices.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = sign * compareDecimal(prices[mid] as string, price);
      if (c < 0) lo = mid + 1;
      else if (c > 0) hi = mid - 1;
      else return mid;
    }
    return -lo - 1;
  }

  /** Set `price` to `qty` (canonical); `zero` deletes. */
  set(price: string, qty: string, zero: boolean): void {
    const at = this.find(price);
    if (at >= 0) {
      if (zero) {
        this.prices.splice(at, 1);
        this.qtys.splice(at, 1);
      } else {
        this.qtys[at] = qty;
      }
    } else if (!zero) {
      const insert = -at - 1;
      if (insert === this.prices.length) {
        this.prices.push(price);
        this.qtys.push(qty);
      } else {
        this.prices.splice(insert, 0, price);
        this.qtys.splice(insert, 0, qty);
      }
    }
  }

  clear(): void {
    this.prices = [];
    this.qtys = [];
  }
}

export class LocalBook {
  readonly pair: string;
  readonly instrument: Instrument;
  epoch: string | null = null;
  seq = 0;
  ts = 0;
  /** The checksum of the position (the last snapshot's or delta's). */
  checksum = 0;
  private readonly bids = new Side(true);
  private readonly asks = new Side(false);
  private readonly zeroQty: string;
  private readonly zeroPrice: string;

  constructor(instrument: Instrument) {
    this.pair = instrument.pair;
    this.instrument = instrument;
    this.zeroQty = zeroOf(instrument.qtyDecimals);
    this.zeroPrice = zeroOf(instrument.priceDecimals);
  }

  /** False until the first snapshot (and after a checksum mismatch): nothing may be applied. */
  get synced(): boolean {
    return this.epoch !== null;
  }

  /** Replace the book with the snapshot's levels and move to its position; verifies. */
  loadSnapshot(snap: SnapshotMessage, verify = true): void {
    this.bids.clear();
    this.asks.clear();
    this.epoch = null; // until the levels are in: a bad level leaves the book unsynced
    this.setLevels(this.bids, snap.bids);
    this.setLevels(this.asks, snap.asks);
    this.epoch = snap.epoch;
    this.seq = snap.seq;
    this.ts = snap.ts;
    this.checksum = snap.checksum;
    if (verify) this.verify();
  }

  /**
   * Apply the next delta; returns false for a stale one (ignored, book untouched).
   * Throws SequenceGapError (book untouched) on a jump or a new epoch, ChecksumMismatchError
   * (book now unsynced) if the result does not verify, InvalidNumberError for a bad level
   * (book unsynced). After any of them the caller needs a fresh snapshot.
   */
  applyDelta(delta: DeltaMessage, verify = true): boolean {
    const verdict = classify(this.epoch, this.seq, delta.epoch, delta.seq);
    if (verdict === "stale") return false;
    if (verdict === "gap") {
      throw new SequenceGapError(
        `${this.pair}: expected ${this.epoch ?? "?"}/${this.seq + 1}, got ${delta.epoch}/${delta.seq}`,
      );
    }
    try {
      this.setLevels(this.bids, delta.bids);
      this.setLevels(this.asks, delta.asks);
    } catch (exc) {
      this.epoch = null;
      throw exc;
    }
    this.seq = delta.seq;
    this.ts = delta.ts;
    this.checksum = delta.checksum;
    if (verify) this.verify();
    return true;
  }

  private setLevels(side: Side, levels: Levels): void {
    const { priceDecimals, qtyDecimals } = this.instrument;
    const zeroQty = this.zeroQty;
    const zeroPrice = this.zeroPrice;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i] as readonly [string, string];
      const price = canonical(level[0], priceDecimals);
      if (price === zeroPrice) throw new InvalidNumberError(`${this.pair}: price ${price}`);
      const qty = canonical(level[1], qtyDecimals);
      side.set(price, qty, qty === zeroQty);
    }
  }

  /** The checksum of the book as it is now (its top 25 levels). */
  computeChecksum(): number {
    return checksumOfSides(this.bids.prices, this.bids.qtys, this.asks.prices, this.asks.qtys);
  }

  /** Check the book against the checksum of its position; unsyncs it and throws on a mismatch. */
  verify(): void {
    const computed = this.computeChecksum();
    if (computed !== this.checksum) {
      this.epoch = null;
      throw new ChecksumMismatchError(this.pair, this.seq, this.checksum, computed);
    }
  }

  /** Best-first levels of a side, at most `depth` of them (all by default). */
  levels(side: "bids" | "asks", depth = Infinity): Level[] {
    const s = side === "bids" ? this.bids : this.asks;
    const n = Math.max(0, Math.min(depth, s.prices.length));
    const out: Level[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = { price: s.prices[i] as string, qty: s.qtys[i] as string };
    return out;
  }

  /** How many levels a side holds. */
  depth(side: "bids" | "asks"): number {
    return (side === "bids" ? this.bids : this.asks).prices.length;
  }

  /** The best level of a side, or null. */
  best(side: "bids" | "asks"): Level | null {
    const s = side === "bids" ? this.bids : this.asks;
    const price = s.prices[0];
    return price === undefined ? null : { price, qty: s.qtys[0] as string };
  }
}
