/**
 * What happened on one client since it started: plain counters (the same names as the Python
 * client's `ClientStats`, in camelCase) and the latency of recent deltas.
 */

const RECENT = 1024; // latencies kept for percentiles

export class ClientStats {
  /** WebSocket frames received. */
  frames = 0;
  /** Characters of those frames. */
  bytes = 0;
  /** Protocol messages in them (an array frame holds several). */
  messages = 0;
  /** Snapshots loaded (each replaces a book). */
  snapshots = 0;
  /** Deltas applied. */
  deltas = 0;
  /** Deltas at or below the book's seq, ignored by the rules. */
  staleDeltas = 0;
  /** Deltas of a pair waiting for its snapshot. */
  ignoredDeltas = 0;
  /** Seq jumps and epoch changes detected. */
  gaps = 0;
  /** Books that did not hash to the message's checksum. */
  checksumFailures = 0;
  /** Resync requests queued. */
  resyncs = 0;
  /** Frames or messages that could not be decoded or applied. */
  badFrames = 0;
  /** Error messages from the gateway. */
  errors = 0;
  /** Of those, answers to our own subscribe (their pairs went unsynced). */
  subscribeRefusals = 0;
  /** Book messages for pairs this client does not follow. */
  unexpected = 0;
  /** Connections opened (the first one included). */
  connects = 0;
  /** Connections opened after a lost one. */
  reconnects = 0;
  /** Connections lost or closed by the server. */
  disconnects = 0;
  /** Connection attempts that failed (other than handshakeRefusals). */
  connectFailures = 0;
  /** Attempts a busy gateway refused with HTTP 503 or 429 (seen in Node only; see README). */
  handshakeRefusals = 0;
  /** "subscribed" answers with "recovered": true (deltas replayed, no snapshot). */
  recoveries = 0;
  /** Exceptions thrown by event listeners. */
  callbackErrors = 0;
  /** Ops that waited for the client's op budget. */
  pacedOps = 0;
  /** receipt - xts of the last delta, ms. */
  lastExchangeLatencyMs: number | null = null;
  /** receipt - ts (window close) of the last delta, ms. */
  lastWindowLatencyMs: number | null = null;
  maxExchangeLatencyMs = 0;
  maxWindowLatencyMs = 0;
  private readonly recent = new Float64Array(RECENT);
  private recorded = 0;

  recordLatency(exchangeMs: number, windowMs: number): void {
    this.lastExchangeLatencyMs = exchangeMs;
    this.lastWindowLatencyMs = windowMs;
    if (exchangeMs > this.maxExchangeLatencyMs) this.maxExchangeLatencyMs = exchangeMs;
    if (windowMs > this.maxWindowLatencyMs) this.maxWindowLatencyMs = windowMs;
    this.recent[this.recorded % RECENT] = exchangeMs;
    this.recorded += 1;
  }

  /** A percentile (0-100) of the exchange -> receipt latency of the last 1024 deltas, ms. */
  exchangeLatencyPercentile(p: number): number | null {
    const n = Math.min(this.recorded, RECENT);
    if (n === 0) return null;
    const sorted = Array.from(this.recent.subarray(0, n)).sort((a, b) => a - b);
    return sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))] as number;
  }

  /** The counters as a plain object (JSON-ready). */
  toJSON(): Record<string, number | null> {
    const out: Record<string, number | null> = {};
    for (const [key, value] of Object.entries(this)) {
      if ((typeof value === "number" || value === null) && key !== "recorded") out[key] = value;
    }
    return out;
  }
}
