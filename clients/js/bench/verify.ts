/**
 * How long the client takes to verify one delta: apply its levels to the book and compute the
 * CRC-32 of the top 25 levels of each side (what it does for every delta it receives).
 *
 *     npm run bench            # or: node build/bench/verify.js [--deltas N] [--depth N] [--json]
 *
 * A BTC-USD book of `--depth` levels a side (default 500, the simulated exchange's cap) takes
 * `--deltas` pre-made deltas (default 20000) of 1 to 16 changed levels each, most near the top
 * of the book (new quantities, levels replaced by new ones), every one carrying the source's
 * checksum. Each delta is timed on its own (process.hrtime); the median, p90 and p99 are
 * printed. The first quarter warms the JIT up and is not counted.
 *
 * Then what a page following 20 pairs at 100 ms windows pays per window: one packed frame of
 * 20 deltas (1-8 levels each, 300-level books) through `BookClient.receive` (JSON decode,
 * seq rules, apply, checksum), 600 windows, mean per frame.
 */

import { LocalBook } from "../src/book.js";
import { BookClient } from "../src/client.js";
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

// Changes land mostly near the top of the book: an existing level gets a new quantity (70 %),
// or goes and a new level appears next to it (30 %), so the book keeps its depth.
function units(price: string): number {
  return Number(price.replace(".", ""));
}

const deltas: DeltaMessage[] = [];
for (let i = 0; i < DELTAS; i++) {
  const now = { bids: source.side("bids"), asks: source.side("asks") };
  const changes = { bids: [] as [string, string][], asks: [] as [string, string][] };
  const seen = new Set<string>();
  const n = 1 + Math.floor(rand() * 16);
  for (let k = 0; k < n; k++) {
    const side = rand() < 0.5 ? "bids" : "asks";
    const levels = now[side];
    const at = Math.min(levels.length - 1, Math.floor(Math.abs(rand() - rand()) * levels.length));
    const price = (levels[at] as [string, string])[0];
    if (seen.has(side + price)) continue; // a window lists a level once
    seen.add(side + price);
    const qty = fmt(1 + Math.floor(rand() * 500_000), inst.qtyDecimals);
    if (rand() < 0.7) {
      changes[side].push([price, qty]);
      continue;
    }
    const map = side === "bids" ? source.bids : source.asks;
    const moved = fmt(units(price) + (side === "bids" ? -1 : 1) * (1 + Math.floor(rand() * 9)), inst.priceDecimals);
    if (map.has(moved) || seen.has(side + moved)) continue;
    seen.add(side + moved);
    changes[side].push([price, fmt(0, inst.qtyDecimals)], [moved, qty]);
  }
  deltas.push(source.delta(changes.bids, changes.asks));
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
// 20 pairs, one packed frame per window
const pairs = Array.from({ length: 20 }, (_, i) => `SYN${String(i).padStart(3, "0")}-USD`);
const books = pairs.map((p) => new Source(p, "e", 0, 300));
const client = new BookClient("ws://127.0.0.1:9/ws", pairs, { log: () => {} }); // never started: fed by hand
for (const b of books) client.receive(JSON.stringify(b.snapshot()));
const frames: string[] = [];
for (let w = 0; w < 600; w++) {
  const window = books.map((b) => {
    const top = b.side("bids");
    const bids = top.slice(0, 1 + (w % 8)).map(([price], k): [string, string] => [price, fmt(1 + ((w * 7 + k) % 900) * 1000, 3)]);
    return b.delta(bids, []);
  });
  frames.push(JSON.stringify(window));
}
const started = process.hrtime.bigint();
for (const frame of frames) client.receive(frame);
const perFrameMs = Number(process.hrtime.bigint() - started) / 1e6 / frames.length;
if (client.stats.deltas !== 20 * 600 || client.stats.checksumFailures + client.stats.gaps > 0) {
  throw new Error(`the 20-pair run did not verify: ${JSON.stringify(client.stats)}`);
}
const windows = { pairs: 20, frames: frames.length, ms_per_frame: Number(perFrameMs.toFixed(3)) };

if (json) {
  console.log(JSON.stringify({ ...result, twenty_pairs: windows }));
} else {
  console.log(
    `verify one delta (apply + CRC-32 of 25 levels a side), ${result.deltas} deltas of 1-16 levels on a ` +
      `${DEPTH}-level book, ${result.node}:\n  median ${result.median_us} µs   p90 ${result.p90_us} µs   p99 ${result.p99_us} µs`,
  );
  if (result.median_us >= 50) console.log("  (the goal is a median under 50 µs)");
  console.log(
    `20 pairs at 100 ms windows: ${windows.ms_per_frame} ms per window's frame (20 deltas decoded, applied, verified), ` +
      `${((windows.ms_per_frame / 100) * 100).toFixed(2)} % of one core`,
  );
}
