import assert from "node:assert/strict";
import { test } from "node:test";

import { BookSet, type BookUpdate, type SyncChange } from "../src/book-set.js";
import { ChecksumMismatchError, classify, LocalBook, SequenceGapError } from "../src/book.js";
import { instrument } from "../src/instruments.js";
import { ClientStats } from "../src/stats.js";
import { fmt, seeded, Source } from "./helpers.js";

test("the three-way rule", () => {
  assert.equal(classify("e", 5, "e", 5), "stale");
  assert.equal(classify("e", 5, "e", 3), "stale");
  assert.equal(classify("e", 5, "e", 6), "next");
  assert.equal(classify("e", 5, "e", 8), "gap");
  assert.equal(classify("e", 5, "f", 6), "gap");
  assert.equal(classify(null, 0, "e", 1), "gap");
});

test("a book follows random deltas exactly, verifying every checksum", () => {
  const rand = seeded(7);
  for (const pair of ["BTC-USD", "DOGE-USD", "XRP-USD"]) {
    const source = new Source(pair, "e1", 0, 30);
    const book = new LocalBook(instrument(pair));
    book.loadSnapshot(source.snapshot());
    const { priceDecimals: pd, qtyDecimals: qd } = source.inst;
    for (let i = 0; i < 2000; i++) {
      const changes = (): [string, string][] =>
        Array.from({ length: 1 + Math.floor(rand() * 5) }, () => {
          const price = fmt(100 * 10 ** pd + Math.floor((rand() - 0.5) * 120) * 10, pd);
          const qty = rand() < 0.3 ? (rand() < 0.5 ? "0" : fmt(0, qd)) : fmt(1 + Math.floor(rand() * 9e3), qd);
          return [price, qty];
        });
      // bids below 100, asks above: a book that never crosses
      const bids = changes().filter(([p]) => Number(p) < 100);
      const asks = changes().filter(([p]) => Number(p) > 100);
      assert.equal(book.applyDelta(source.delta(bids, asks)), true);
    }
    assert.deepEqual(book.levels("bids").map((l) => [l.price, l.qty]), source.side("bids"));
    assert.deepEqual(book.levels("asks").map((l) => [l.price, l.qty]), source.side("asks"));
  }
});

test("gaps and new epochs throw without touching the book; mismatches unsync it", () => {
  const source = new Source();
  const book = new LocalBook(source.inst);
  book.loadSnapshot(source.snapshot());
  const next = source.bump();
  assert.equal(book.applyDelta(next), true);
  assert.equal(book.applyDelta(next), false); // a duplicate: stale
  source.bump();
  const skipped = source.bump();
  assert.throws(() => book.applyDelta(skipped), SequenceGapError);
  assert.equal(book.seq, next.seq);
  assert.throws(() => book.applyDelta({ ...next, epoch: "e2", seq: next.seq + 1 }), SequenceGapError);
  const fresh = new Source();
  const b2 = new LocalBook(fresh.inst);
  b2.loadSnapshot(fresh.snapshot());
  const bad = fresh.bump();
  assert.throws(() => b2.applyDelta({ ...bad, checksum: (bad.checksum + 1) >>> 0 }), ChecksumMismatchError);
  assert.equal(b2.synced, false);
  assert.throws(() => b2.loadSnapshot({ ...fresh.snapshot(), checksum: 1 }), ChecksumMismatchError);
  assert.equal(b2.synced, false);
});

function bookSet(): { books: BookSet; stats: ClientStats; updates: BookUpdate[]; syncs: SyncChange[] } {
  const stats = new ClientStats();
  const updates: BookUpdate[] = [];
  const syncs: SyncChange[] = [];
  const books = new BookSet(stats, { update: (u) => updates.push(u), sync: (s) => syncs.push(s), log: () => {} });
  return { books, stats, updates, syncs };
}

test("a gap unsyncs the pair, queues one resync, ignores deltas until the snapshot", () => {
  const { books, stats, syncs } = bookSet();
  const source = new Source();
  books.add([source.inst], 0);
  books.beginConnection(0);
  assert.deepEqual(books.nextOp(0), { op: "subscribe", pairs: ["BTC-USD"], id: 1 });
  books.onSnapshot(source.snapshot(), 1);
  assert.equal(books.state("BTC-USD").synced, true);
  source.bump();
  books.onDelta(source.bump(), 2);
  assert.equal(stats.gaps, 1);
  assert.equal(books.state("BTC-USD").synced, false);
  assert.deepEqual(syncs.at(-1), { pair: "BTC-USD", synced: false, reason: "gap" });
  books.onDelta(source.bump(), 3);
  assert.equal(stats.ignoredDeltas, 1);
  assert.deepEqual(books.nextOp(4), { op: "resync", pair: "BTC-USD", id: 2 });
  assert.equal(books.nextOp(4), undefined); // one resync, not one per delta
  books.onSnapshot(source.snapshot(), 5);
  books.onDelta(source.bump(), 6);
  assert.equal(stats.deltas, 1);
  assert.equal(stats.resyncs, 1);
});

test("an unknown_pair refusal is split in halves; a pair refused alone is refused", () => {
  const { books, stats } = bookSet();
  books.add(["BTC-USD", "ETH-USD", "SOL-USD"].map((p) => instrument(p)), 0);
  books.beginConnection(0);
  const op = books.nextOp(0);
  assert.equal(op?.op, "subscribe");
  assert.equal(books.onError({ type: "error", code: "unknown_pair", message: "SOL-USD", id: op.id }, 1), true);
  const first = books.nextOp(1);
  const second = books.nextOp(1);
  assert.deepEqual(first?.op === "subscribe" && first.pairs, ["BTC-USD"]);
  assert.deepEqual(second?.op === "subscribe" && second.pairs, ["ETH-USD", "SOL-USD"]);
  books.onError({ type: "error", code: "unknown_pair", message: "SOL-USD", id: second!.id }, 2);
  const [eth, sol] = [books.nextOp(2), books.nextOp(2)];
  books.onAck({ type: "subscribed", pairs: ["ETH-USD"], id: eth!.id });
  books.onError({ type: "error", code: "unknown_pair", message: "not offered here: SOL-USD", id: sol!.id }, 3);
  assert.deepEqual(books.state("SOL-USD").refusal, { code: "unknown_pair", message: "not offered here: SOL-USD" });
  assert.equal(books.state("ETH-USD").refusal, null);
  assert.equal(stats.subscribeRefusals, 3);
  assert.equal(books.nextOp(3), undefined); // not asked again at once
  books.requestOverdue(3 + 1000);
  assert.equal(books.nextOp(1003), undefined); // nor a second later (15-30 s at first)
  books.requestOverdue(3 + 31_000);
  const ops = [];
  for (let op = books.nextOp(31_003); op !== undefined; op = books.nextOp(31_003)) ops.push(op);
  // BTC-USD and ETH-USD never got their snapshots: resyncs; SOL-USD is asked again on its own
  assert.deepEqual(
    ops.map((o) => (o.op === "subscribe" ? ["subscribe", ...o.pairs] : o.op === "resync" ? ["resync", o.pair] : [o.op])),
    [["resync", "BTC-USD"], ["resync", "ETH-USD"], ["subscribe", "SOL-USD"]],
  );
});

test("a reconnect subscribes synced pairs with since, the others without", () => {
  const { books } = bookSet();
  const btc = new Source("BTC-USD", "e1", 41);
  books.add([btc.inst, instrument("ETH-USD")], 0);
  books.beginConnection(0);
  books.nextOp(0);
  books.onSnapshot(btc.snapshot(), 1);
  books.connectionLost();
  books.beginConnection(2);
  assert.deepEqual(books.nextOp(2), {
    op: "subscribe", pairs: ["BTC-USD", "ETH-USD"], id: 2, since: { "BTC-USD": { epoch: "e1", seq: 41 } },
  });
});
