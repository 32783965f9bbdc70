/**
 * Reconnect delays, the op budget, and `Retry-After`: the same rules as clients/backoff.py,
 * clients/pacing.py and clients/refusal.py. Times are in seconds; every function takes the
 * time or the random draw it needs, so the rules are tested without clocks.
 */

export interface BackoffOptions {
  /** Seconds before the first retry, before jitter (0.25). */
  readonly initial: number;
  /** No delay is longer than this (10). */
  readonly maximum: number;
  /** Growth per failed attempt (2). */
  readonly factor: number;
  /** Fraction of the delay that is random: 0 none, 1 "full jitter" (0.5). */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initial: 0.25, maximum: 10, factor: 2, jitter: 0.5 };

/** A refused pair is subscribed again after 15-30 s, doubling up to 5-10 min. */
export const REFUSAL_BACKOFF: BackoffOptions = { initial: 30, maximum: 600, factor: 2, jitter: 0.5 };

export function checkBackoff(b: BackoffOptions): BackoffOptions {
  if (!(b.initial > 0 && b.initial <= b.maximum)) throw new RangeError("backoff needs 0 < initial <= maximum");
  if (!(b.factor >= 1)) throw new RangeError("backoff factor must be >= 1");
  if (!(b.jitter >= 0 && b.jitter <= 1)) throw new RangeError("backoff jitter must be in [0, 1]");
  return b;
}

/** The delay of `attempt` (0-based) before jitter: `initial * factor ** attempt`, capped. */
export function ceiling(b: BackoffOptions, attempt: number): number {
  return Math.min(b.maximum, b.initial * b.factor ** Math.max(0, attempt));
}

/** Seconds before `attempt`: in `[c * (1 - jitter), c]` where `c` is its ceiling. */
export function backoffDelay(b: BackoffOptions, attempt: number, rand: () => number = Math.random): number {
  const c = ceiling(b, attempt);
  return c - c * b.jitter * rand();
}

/**
 * Seconds to wait after a handshake refused for load (503/429): from `base` to
 * `base * (1 + jitter)`, `base` being the larger of `Retry-After` (never shortened) and the
 * backoff's ceiling for `attempt`, so that refused clients come back spread out, not as a wave.
 */
export function afterRefusal(
  b: BackoffOptions,
  attempt: number,
  retryAfter: number | null,
  rand: () => number = Math.random,
): number {
  const base = Math.max(retryAfter ?? 0, ceiling(b, attempt));
  return base + base * b.jitter * rand();
}

/** A `Retry-After` above this is read as this: a broken header must not park a client for days. */
export const MAX_RETRY_AFTER = 300;

/** Seconds from a `Retry-After` value (delay-seconds, or an HTTP-date), capped; null if unreadable. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  let seconds: number;
  if (/^[0-9]+(\.[0-9]+)?$/.test(text)) {
    seconds = Number(text);
  } else {
    const when = Date.parse(text);
    if (Number.isNaN(when) || !/[a-z]/i.test(text)) return null;
    seconds = Math.max(0, (when - nowMs) / 1000);
  }
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, MAX_RETRY_AFTER) : null;
}

/**
 * The client's own op budget: `rate` ops a second with at most `burst` saved up, starting
 * full like the gateway's (20/s, bursts of 40; passing it closes the connection with 1008).
 */
export class OpPacer {
  private tokens: number;
  private stamp: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError("op pacing needs rate > 0 and burst >= 1");
    this.tokens = burst;
    this.stamp = now;
  }

  private refill(now: number): void {
    if (now > this.stamp) {
      this.tokens = Math.min(this.burst, this.tokens + (now - this.stamp) * this.rate);
      this.stamp = now;
    }
  }

  /** Seconds until an op may go (0: now). */
  wait(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : (1 - this.tokens) / this.rate;
  }

  /** Spend a token if there is one. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }
}
