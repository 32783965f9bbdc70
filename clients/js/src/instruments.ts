/**
 * The instrument catalogue (protocol.md section 2; the same as mdcore/instruments.py): the
 * price and quantity decimals of every pair, which is all a client needs to bring values to
 * canonical form and verify checksums without asking anyone.
 *
 * A gateway may offer pairs a newer catalogue has and this one does not: give them to the
 * client with the `instruments` option (`{"NEW-USD": {priceDecimals: 2, qtyDecimals: 4}}`).
 */

export interface Instrument {
  readonly pair: string;
  readonly priceDecimals: number;
  readonly qtyDecimals: number;
}

export type InstrumentSpec = Omit<Instrument, "pair">;

export class UnknownPairError extends Error {
  override name = "UnknownPairError";
  constructor(readonly pair: unknown) {
    super(`unknown pair: ${JSON.stringify(pair)}`);
  }
}

const NAMED: Record<string, [number, number]> = {
  "BTC-USD": [2, 5],
  "ETH-USD": [2, 4],
  "SOL-USD": [2, 3],
  "XRP-USD": [4, 1],
  "ADA-USD": [4, 1],
  "DOGE-USD": [5, 0],
  "LTC-USD": [2, 3],
  "DOT-USD": [3, 2],
};

/** The named pairs of the catalogue, in its order. */
export const NAMED_PAIRS: readonly string[] = Object.keys(NAMED);

const SYNTHETIC = /^SYN[0-9]{3,4}-USD$/; // load-test pairs: 2 price decimals, 3 quantity decimals

/** The instrument of `pair` (`extra` first, then the catalogue); UnknownPairError if none. */
export function instrument(pair: string, extra?: Readonly<Record<string, InstrumentSpec>>): Instrument {
  if (typeof pair !== "string") throw new UnknownPairError(pair);
  const own = extra !== undefined && Object.hasOwn(extra, pair) ? extra[pair] : undefined;
  if (own !== undefined) return { pair, priceDecimals: own.priceDecimals, qtyDecimals: own.qtyDecimals };
  const named = Object.hasOwn(NAMED, pair) ? NAMED[pair] : undefined;
  if (named !== undefined) return { pair, priceDecimals: named[0], qtyDecimals: named[1] };
  if (SYNTHETIC.test(pair)) return { pair, priceDecimals: 2, qtyDecimals: 3 };
  throw new UnknownPairError(pair);
}
