/**
 * How long the client takes to verify one delta: apply its levels to the book and compute the
 * CRC-32 of the top 25 levels of each side (what it does for every delta it receives).
 *
 *     npm run bench            # or: node build/bench/verify.js [--deltas N] [--depth N] [--json]
 *
 * A BTC-USD book of `--depth` levels a side (default 500, the simulated exchange's cap) takes
 * `--deltas` pre-made deltas (default 20000) of 1 to 16 level changes each, most near the top
 * of the book (updates, new levels, deletions), every one carrying the source's checksum. Each
 * delta is timed on its own (process.hrtime); the median, p90 and p99 are printed. The first
 * quarter warms the JIT up and is not counted.
 */

import { LocalBook } from "../src/book.js";
import { instrument } from "../src/instruments.js";
import type { DeltaMessage } from "../src/messages.js";
import { fmt, seeded, Source } from "../test/helpers.js";

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const DELTAS = arg("deltas", 20_000);
const DEPTH = arg("depth", 500);
const json = process.argv.includes("--json");

const rand = seeded(12);
const source = new Source("BTC-USD", "bench", 0, DEPTH);
const inst = instrument("BTC-USD");
const snapshot = source.snapshot();

// Prices near the top: levels are 0.10 apart around 100.00 (Source's grid); a few ticks off
// the grid's multiples make new levels appear and disappear.
function change(side: "bids" | "asks"): [string, string] {
  const offset = Math.floor(Math.abs(rand() - rand()) * DEPTH * 0.6) + 1;
  const ticks = offset * 10 + (rand() < 0.2 ? Math.floor(rand() * 9) + 1 : 0);
  const price = fmt(side === "bids" ? 10_000 - ticks : 10_000 + ticks, inst.priceDecimals);
  const qty = rand() < 0.25 ? fmt(0, inst.qtyDecimals) : fmt(1 + Math.floor(rand() * 500_000), inst.qtyDecimals);
  return [price, qty];
}

const deltas: DeltaMessage[] = [];
for (let i = 0; i < DELTAS; i++) {
  const n = 1 + Math.floor(rand() * 16);
  const bids: [string, string][] = [];
  const asks: [string, string][] = [];
  const seen = new Set<string>();
  for (let k = 0; k < n; k++) {
    const side = rand() < 0.5 ? "bids" : "asks";
    const level = change(side);
    if (seen.has(side + level[0])) continue; // a window lists a level once
    seen.add(side + level[0]);
    (side === "bids" ? bids : asks).push(level);
  }
  deltas.push(source.delta(bids, asks));
}

const book = new LocalBook(inst);
book.loadSnapshot(snapshot);
const times = new Float64Array(DELTAS);
for (let i = 0; i < DELTAS; i++) {
  const delta = deltas[i] as DeltaMessage;
  const t0 = process.hrtime.bigint();
  book.applyDelta(delta); // throws on a checksum mismatch: every delta is verified
  times[i] = Number(process.hrtime.bigint() - t0) / 1000;
}
const counted = Array.from(times.subarray(Math.floor(DELTAS / 4))).sort((a, b) => a - b);
const pct = (p: number): number => counted[Math.min(counted.length - 1, Math.floor((p / 100) * counted.length))] as number;
const result = {
  deltas: counted.length,
  depth: DEPTH,
  levels_per_side_at_end: { bids: book.depth("bids"), asks: book.depth("asks") },
  median_us: Number(pct(50).toFixed(2)),
  p90_us: Number(pct(90).toFixed(2)),
  p99_us: Number(pct(99).toFixed(2)),
  node: process.version,
};
if (json) {
  console.log(JSON.stringify(result));
} else {
  console.log(
    `verify one delta (apply + CRC-32 of 25 levels a side), ${result.deltas} deltas of 1-16 levels on a ` +
      `${DEPTH}-level book, ${result.node}:\n  median ${result.median_us} µs   p90 ${result.p90_us} µs   p99 ${result.p99_us} µs`,
  );
  if (result.median_us >= 50) console.log("  (the goal is a median under 50 µs)");
}
