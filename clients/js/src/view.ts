/**
 * A read-only, live view of one pair's book, in canonical decimal strings.
 *
 * While the pair is not synced (before its first snapshot, while resyncing, or refused by the
 * gateway) the book cannot be trusted, so every accessor answers as if it were empty; check
 * `synced` to tell "no levels" from "not known", and `refusal` for why a pair stays unsynced.
 */

import type { PairState, SubscriptionRefusal } from "./book-set.js";
import type { Level } from "./book.js";
import { formatUnits, toUnits } from "./decimal.js";
import type { StreamPosition } from "./messages.js";

export interface BookLevels {
  readonly bids: Level[];
  readonly asks: Level[];
}

export class BookView {
  constructor(private readonly state: PairState) {}

  get pair(): string {
    return this.state.pair;
  }

  /** True when the book is a verified copy of the source at `seq`. */
  get synced(): boolean {
    return this.state.synced;
  }

  /** The gateway's error answer to subscribing this pair while it stands (then not synced). */
  get refusal(): SubscriptionRefusal | null {
    return this.state.refusal;
  }

  get epoch(): string | null {
    return this.state.synced ? this.state.book.epoch : null;
  }

  get seq(): number {
    return this.state.book.seq;
  }

  /** Time (ns) of the last applied snapshot or window close. */
  get ts(): number {
    return this.state.book.ts;
  }

  get position(): StreamPosition | null {
    const book = this.state.book;
    return this.state.synced && book.epoch !== null ? { epoch: book.epoch, seq: book.seq } : null;
  }

  /** The checksum of the book's position (what its top 25 levels hash to). */
  get checksum(): number | null {
    return this.state.synced ? this.state.book.checksum : null;
  }

  /** The price and quantity decimals of the pair. */
  get decimals(): { price: number; qty: number } {
    const inst = this.state.book.instrument;
    return { price: inst.priceDecimals, qty: inst.qtyDecimals };
  }

  bestBid(): Level | null {
    return this.state.synced ? this.state.book.best("bids") : null;
  }

  bestAsk(): Level | null {
    return this.state.synced ? this.state.book.best("asks") : null;
  }

  /** The best `depth` levels of each side, best first (`top(Infinity)`: every level). */
  top(depth = 5): BookLevels {
    if (!this.state.synced) return { bids: [], asks: [] };
    const book = this.state.book;
    return { bids: book.levels("bids", depth), asks: book.levels("asks", depth) };
  }

  /** How many levels each side holds. */
  depth(): { bids: number; asks: number } {
    if (!this.state.synced) return { bids: 0, asks: 0 };
    return { bids: this.state.book.depth("bids"), asks: this.state.book.depth("asks") };
  }

  /** Best ask minus best bid as a price string (exact); null if a side is empty or not synced. */
  spread(): string | null {
    const bid = this.bestBid();
    const ask = this.bestAsk();
    if (bid === null || ask === null) return null;
    const decimals = this.state.book.instrument.priceDecimals;
    return formatUnits(toUnits(ask.price, decimals) - toUnits(bid.price, decimals), decimals);
  }
}
