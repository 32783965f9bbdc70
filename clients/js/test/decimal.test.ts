import assert from "node:assert/strict";
import { test } from "node:test";

import { canonical, compareDecimal, formatUnits, InvalidNumberError, toUnits } from "../src/decimal.js";
import { instrument, UnknownPairError } from "../src/instruments.js";

test("canonical values come back as they are", () => {
  for (const [text, d] of [["64000.10", 2], ["0.00000", 5], ["42", 0], ["0", 0], ["1.5", 1]] as const) {
    assert.equal(canonical(text, d), text);
  }
});

test("other spellings of a value are made canonical, off-grid ones refused", () => {
  assert.equal(canonical("1.5", 5), "1.50000");
  assert.equal(canonical("0", 5), "0.00000");
  assert.equal(canonical("007.25", 2), "7.25");
  assert.equal(canonical("1.500", 2), "1.50");
  assert.equal(canonical("5.000", 0), "5");
  assert.equal(canonical("00", 0), "0");
  for (const bad of ["1.234", "-1.00", "1e3", "", " 1.00", "1.", ".5", "0x10", "1,00", "9".repeat(65)]) {
    assert.throws(() => canonical(bad, 2), InvalidNumberError, bad);
  }
  assert.throws(() => canonical("9".repeat(63), 2), InvalidNumberError); // 66 characters once canonical
});

test("canonical strings compare in numeric order, exactly, beyond 2**53", () => {
  const values = ["10.00", "9.99", "100.00", "0.01", "99999999999999999999.99", "99999999999999999999.98", "1.00"];
  const sorted = [...values].sort(compareDecimal);
  assert.deepEqual(sorted, [
    "0.01", "1.00", "9.99", "10.00", "100.00", "99999999999999999999.98", "99999999999999999999.99",
  ]);
  assert.equal(compareDecimal("5.00", "5.00"), 0);
});

test("units arithmetic is exact", () => {
  assert.equal(toUnits("64000.10", 2), 6400010n);
  assert.equal(formatUnits(toUnits("64000.20", 2) - toUnits("64000.10", 2), 2), "0.10");
  assert.equal(formatUnits(-5n, 3), "-0.005");
  assert.equal(formatUnits(0n, 0), "0");
  assert.equal(formatUnits(123n, 0), "123");
  assert.equal(formatUnits(toUnits("0.1", 5) + toUnits("0.2", 5), 5), "0.30000"); // not 0.30000000000000004
});

test("the catalogue matches mdcore/instruments.py", () => {
  assert.deepEqual(instrument("BTC-USD"), { pair: "BTC-USD", priceDecimals: 2, qtyDecimals: 5 });
  assert.deepEqual(instrument("DOGE-USD"), { pair: "DOGE-USD", priceDecimals: 5, qtyDecimals: 0 });
  assert.deepEqual(instrument("SYN0042-USD"), { pair: "SYN0042-USD", priceDecimals: 2, qtyDecimals: 3 });
  assert.throws(() => instrument("FOO-USD"), UnknownPairError);
  assert.throws(() => instrument("toString"), UnknownPairError);
  assert.deepEqual(instrument("FOO-USD", { "FOO-USD": { priceDecimals: 1, qtyDecimals: 2 } }), {
    pair: "FOO-USD", priceDecimals: 1, qtyDecimals: 2,
  });
});
