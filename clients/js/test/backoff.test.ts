import assert from "node:assert/strict";
import { test } from "node:test";

import { afterRefusal, backoffDelay, DEFAULT_BACKOFF, OpPacer, parseRetryAfter } from "../src/backoff.js";

test("backoff grows, is capped, and jitters below its ceiling", () => {
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 0, () => 0), 0.25);
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 0, () => 0.999999) > 0.125, true);
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 3, () => 0), 2);
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 50, () => 0), 10);
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 5000, () => 0), 10);
});

test("after a refusal the wait is at least Retry-After, with jitter above it", () => {
  assert.equal(afterRefusal(DEFAULT_BACKOFF, 0, 3, () => 0), 3);
  assert.equal(afterRefusal(DEFAULT_BACKOFF, 0, 3, () => 1), 4.5);
  assert.equal(afterRefusal(DEFAULT_BACKOFF, 0, null, () => 0), 0.25);
  assert.equal(afterRefusal(DEFAULT_BACKOFF, 4, 1, () => 0), 4); // the backoff's ceiling when larger
  assert.equal(afterRefusal(DEFAULT_BACKOFF, 0, 60, () => 0), 60); // never shortened past the maximum
});

test("Retry-After: seconds, HTTP dates, junk, and a cap", () => {
  assert.equal(parseRetryAfter("3"), 3);
  assert.equal(parseRetryAfter(" 2.5 "), 2.5);
  assert.equal(parseRetryAfter(null), null);
  assert.equal(parseRetryAfter("soon"), null);
  assert.equal(parseRetryAfter("-1"), null);
  assert.equal(parseRetryAfter("999999"), 300);
  const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
  assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:28:10 GMT", now), 10);
  assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:27:00 GMT", now), 0);
});

test("the op pacer allows a burst, then its rate", () => {
  const pacer = new OpPacer(10, 20, 0);
  for (let i = 0; i < 20; i++) assert.equal(pacer.take(0), true);
  assert.equal(pacer.take(0), false);
  assert.ok(Math.abs(pacer.wait(0) - 0.1) < 1e-9);
  assert.equal(pacer.take(0.1), true);
  assert.equal(pacer.take(0.1), false);
  assert.equal(pacer.take(100), true); // refilled, but never past the burst
  for (let i = 0; i < 19; i++) assert.equal(pacer.take(100), true);
  assert.equal(pacer.take(100), false);
});
