import assert from "node:assert/strict";
import { test } from "node:test";

import { checksumOfLevels, crc32 } from "../src/checksum.js";

test("crc32 is zlib's CRC-32", () => {
  assert.equal(crc32(""), 0);
  assert.equal(crc32("123456789"), 0xcbf43926); // the standard check value
  assert.equal(crc32("a"), 0xe8b7be43);
});

test("the worked example of protocol.md section 6", () => {
  const bids: [string, string][] = [["64000.10", "1.25000"], ["63999.90", "0.50000"]];
  const asks: [string, string][] = [["64000.20", "0.75000"], ["64000.50", "2.00000"], ["64001.00", "0.10000"]];
  assert.equal(checksumOfLevels(bids, asks), 3528485232);
  assert.equal(
    crc32("64000.10:1.25000:64000.20:0.75000:63999.90:0.50000:64000.50:2.00000:64001.00:0.10000"),
    3528485232,
  );
  const after: [string, string][] = [["64000.15", "0.30000"], ["63999.90", "0.50000"]];
  const afterAsks: [string, string][] = [["64000.20", "1.00000"], ["64000.50", "2.00000"], ["64001.00", "0.10000"]];
  assert.equal(checksumOfLevels(after, afterAsks), 1659290098);
});

test("only the first 25 levels of each side count, interleaved, missing ones left out", () => {
  const bids: [string, string][] = Array.from({ length: 30 }, (_, i) => [`${100 - i}.00`, "1.000"]);
  const asks: [string, string][] = Array.from({ length: 3 }, (_, i) => [`${200 + i}.00`, "2.000"]);
  const parts: string[] = [];
  for (let i = 0; i < 25; i++) {
    parts.push(`${bids[i]![0]}:${bids[i]![1]}`);
    if (i < asks.length) parts.push(`${asks[i]![0]}:${asks[i]![1]}`);
  }
  assert.equal(checksumOfLevels(bids, asks), crc32(parts.join(":")));
  assert.equal(checksumOfLevels(bids.slice(0, 25), asks), checksumOfLevels(bids, asks));
  assert.notEqual(checksumOfLevels(bids.slice(0, 24), asks), checksumOfLevels(bids, asks));
  assert.equal(checksumOfLevels([], []), 0);
  assert.equal(checksumOfLevels([], [["1.00", "2.000"]]), crc32("1.00:2.000"));
});
