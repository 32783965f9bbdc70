/** A source book for tests: absolute changes in, correct snapshots and deltas (with checksums) out. */

import { checksumOfSides } from "../src/checksum.js";
import { canonical, compareDecimal } from "../src/decimal.js";
import { instrument, type Instrument } from "../src/instruments.js";
import type { DeltaMessage, SnapshotMessage } from "../src/messages.js";

type Pair = [string, string];

export class Source {
  readonly inst: Instrument;
  bids = new Map<string, string>();
  asks = new Map<string, string>();
  seq: number;
  epoch: string;

  constructor(readonly pair = "BTC-USD", epoch = "e1", seq = 100, depth = 10) {
    this.inst = instrument(pair);
    this.epoch = epoch;
    this.seq = seq;
    const { priceDecimals: pd, qtyDecimals: qd } = this.inst;
    const unit = 10 ** pd;
    for (let i = 1; i <= depth; i++) {
      this.bids.set(fmt(100 * unit - i * 10, pd), fmt(3 * 10 ** qd, qd));
      this.asks.set(fmt(100 * unit + i * 10, pd), fmt(3 * 10 ** qd, qd));
    }
  }

  side(which: "bids" | "asks"): Pair[] {
    const entries = [...(which === "bids" ? this.bids : this.asks).entries()];
    entries.sort((a, b) => compareDecimal(a[0], b[0]) * (which === "bids" ? -1 : 1));
    return entries;
  }

  checksum(): number {
    const b = this.side("bids");
    const a = this.side("asks");
    return checksumOfSides(b.map((l) => l[0]), b.map((l) => l[1]), a.map((l) => l[0]), a.map((l) => l[1]));
  }

  snapshot(): SnapshotMessage {
    return {
      type: "snapshot", pair: this.pair, epoch: this.epoch, seq: this.seq, ts: Date.now() * 1e6,
      bids: this.side("bids"), asks: this.side("asks"), checksum: this.checksum(),
    };
  }

  delta(bids: Pair[] = [], asks: Pair[] = []): DeltaMessage {
    for (const [side, changes] of [[this.bids, bids], [this.asks, asks]] as const) {
      for (const [p, q] of changes) {
        const price = canonical(p, this.inst.priceDecimals);
        const qty = canonical(q, this.inst.qtyDecimals);
        if (/^[0.]+$/.test(qty)) side.delete(price);
        else side.set(price, qty);
      }
    }
    this.seq += 1;
    const ts = Date.now() * 1e6;
    return {
      type: "delta", pair: this.pair, epoch: this.epoch, seq: this.seq, ts, xts: ts - 1e6,
      bids, asks, checksum: this.checksum(),
    };
  }

  /** A delta that changes the best bid's quantity. */
  bump(): DeltaMessage {
    const [price, qty] = this.side("bids")[0]!;
    const next = (BigInt(qty.replace(".", "")) + 1n).toString().padStart(this.inst.qtyDecimals + 1, "0");
    const q = this.inst.qtyDecimals === 0 ? next : `${next.slice(0, -this.inst.qtyDecimals)}.${next.slice(-this.inst.qtyDecimals)}`;
    return this.delta([[price, q]]);
  }
}

export function fmt(units: number, decimals: number): string {
  const s = String(units).padStart(decimals + 1, "0");
  return decimals === 0 ? s : `${s.slice(0, -decimals)}.${s.slice(-decimals)}`;
}

/** A seeded generator (mulberry32) so random tests repeat. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
