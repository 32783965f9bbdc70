/**
 * The books of every pair a client follows and the rules that keep each equal to the source
 * (protocol.md section 7): the client's sans-I/O core, the counterpart of clients/book_set.py.
 * It takes decoded messages with their receipt time, updates the books and queues the ops the
 * connection must send; it never touches a socket, so every rule is tested with plain calls.
 *
 * Per pair: a snapshot (asked for or not) replaces the book; a delta at seq <= last is
 * ignored, at last+1 applied and its checksum verified; a jump, a new epoch, a checksum
 * mismatch or a bad level marks the pair unsynced and queues one `resync`, ignoring the
 * pair's deltas until the snapshot comes (asked again after `resyncRetryMs`).
 *
 * Every subscribe is remembered by id until answered. An error answer means its pairs are not
 * subscribed on this connection, so they go unsynced (a frozen book is never shown as live).
 * `unknown_pair` refuses a whole request for one bad pair, so such a request is split in halves
 * until each unknown pair stands alone; a pair refused alone (or by any other code) is
 * *refused*: shown in its view, and asked again only after the refusal backoff.
 */

import { type BackoffOptions, backoffDelay, REFUSAL_BACKOFF } from "./backoff.js";
import { ChecksumMismatchError, LocalBook, SequenceGapError } from "./book.js";
import { type Instrument } from "./instruments.js";
import type { AckMessage, ClientOp, DeltaMessage, ErrorMessage, SnapshotMessage, StreamPosition } from "./messages.js";
import { type ClientStats } from "./stats.js";

export const MAX_PAIRS_PER_REQUEST = 1024;

/** The gateway's error answer to subscribing a pair. */
export interface SubscriptionRefusal {
  readonly code: string;
  readonly message: string;
}

/** Why a pair stopped being synced (the `sync` event says it). */
export type UnsyncReason =
  | "gap"
  | "epoch"
  | "checksum"
  | "bad_message"
  | "refused"
  | "unsubscribed";

export interface BookUpdate {
  readonly pair: string;
  readonly kind: "snapshot" | "delta";
  readonly epoch: string;
  readonly seq: number;
  /** Time of the book's state (snapshot) or the window's close (delta), ns. */
  readonly ts: number;
  /** Earliest exchange time in the delta's window, ns (null for a snapshot). */
  readonly xts: number | null;
  /** When the frame arrived, ms since the Unix epoch. */
  readonly receivedMs: number;
  /** receipt - ts, ms. */
  readonly windowLatencyMs: number;
  /** receipt - xts, ms (null for a snapshot). */
  readonly exchangeLatencyMs: number | null;
}

export interface SyncChange {
  readonly pair: string;
  readonly synced: boolean;
  /** Why it went unsynced (absent when it became synced). */
  readonly reason?: UnsyncReason;
}

export interface PairState {
  readonly pair: string;
  readonly book: LocalBook;
  synced: boolean;
  /** When (ms) a snapshot was last asked for, or null. */
  waitingSinceMs: number | null;
  updates: number;
  refusal: SubscriptionRefusal | null;
  refusals: number;
  retryAtMs: number | null;
}

export interface BookSetHooks {
  update(update: BookUpdate): void;
  sync(change: SyncChange): void;
  log(level: "info" | "warn" | "error", message: string): void;
}

/** Ops waiting for their turn, in order, with one resync per pair at most. */
class Outbox {
  private ops: ClientOp[] = [];
  private resyncs = new Set<string>();

  get length(): number {
    return this.ops.length;
  }

  push(...ops: ClientOp[]): void {
    for (const op of ops) {
      if (op.op === "resync") this.resyncs.add(op.pair);
      this.ops.push(op);
    }
  }

  hasResync(pair: string): boolean {
    return this.resyncs.has(pair);
  }

  shift(): ClientOp | undefined {
    const op = this.ops.shift();
    if (op !== undefined && op.op === "resync") this.resyncs.delete(op.pair);
    return op;
  }

  clear(): void {
    this.ops = [];
    this.resyncs.clear();
  }

  dropResyncs(pairs: Iterable<string>): void {
    const gone = new Set([...pairs].filter((p) => this.resyncs.has(p)));
    if (gone.size === 0) return;
    this.ops = this.ops.filter((op) => !(op.op === "resync" && gone.has(op.pair)));
    for (const p of gone) this.resyncs.delete(p);
  }
}

export interface BookSetOptions {
  readonly verifyChecksums: boolean;
  readonly resyncRetryMs: number;
  readonly refusalBackoff: BackoffOptions;
  readonly rand: () => number;
}

export class BookSet {
  private readonly states = new Map<string, PairState>();
  private readonly outbox = new Outbox();
  private readonly inflight = new Map<number, readonly string[]>();
  private lastId = 0;
  private readonly opts: BookSetOptions;

  constructor(
    readonly stats: ClientStats,
    private readonly hooks: BookSetHooks,
    options: Partial<BookSetOptions> = {},
  ) {
    this.opts = {
      verifyChecksums: options.verifyChecksums ?? true,
      resyncRetryMs: options.resyncRetryMs ?? 5000,
      refusalBackoff: options.refusalBackoff ?? REFUSAL_BACKOFF,
      rand: options.rand ?? Math.random,
    };
  }

  // --- membership ----------------------------------------------------------------------

  /** A fresh request id (unique per client, across connections). */
  nextId(): number {
    this.lastId += 1;
    return this.lastId;
  }

  get pairs(): string[] {
    return [...this.states.keys()];
  }

  has(pair: string): boolean {
    return this.states.has(pair);
  }

  state(pair: string): PairState {
    const state = this.states.get(pair);
    if (state === undefined) throw new RangeError(`${JSON.stringify(pair)} is not subscribed on this client`);
    return state;
  }

  /** Follow the instruments' pairs; returns the pairs that are new. */
  add(instruments: readonly Instrument[], nowMs: number): string[] {
    const added: string[] = [];
    for (const inst of instruments) {
      if (this.states.has(inst.pair)) continue;
      this.states.set(inst.pair, {
        pair: inst.pair, book: new LocalBook(inst), synced: false, waitingSinceMs: nowMs, updates: 0,
        refusal: null, refusals: 0, retryAtMs: null,
      });
      added.push(inst.pair);
    }
    return added;
  }

  /** Stop following pairs; returns those that were followed (their views go unsynced). */
  remove(pairs: Iterable<string>): string[] {
    const removed: string[] = [];
    for (const pair of new Set(pairs)) {
      const state = this.states.get(pair);
      if (state === undefined) continue;
      this.states.delete(pair);
      removed.push(pair);
      if (state.synced) {
        state.synced = false;
        this.hooks.sync({ pair, synced: false, reason: "unsubscribed" });
      }
    }
    this.outbox.dropResyncs(removed); // the gateway would answer them with bad_request
    return removed;
  }

  allSynced(pairs?: Iterable<string>): boolean {
    for (const pair of pairs ?? this.states.keys()) if (!this.state(pair).synced) return false;
    return true;
  }

  /** The refused pairs among `pairs` (default: all), with the gateway's answer for each. */
  refusals(pairs?: Iterable<string>): Map<string, SubscriptionRefusal> {
    const out = new Map<string, SubscriptionRefusal>();
    for (const pair of pairs ?? this.states.keys()) {
      const refusal = this.state(pair).refusal;
      if (refusal !== null) out.set(pair, refusal);
    }
    return out;
  }

  // --- connection lifecycle ------------------------------------------------------------

  /**
   * Subscribe requests for `pairs` (default: all, as a new connection sends first). A synced
   * book goes with `since` = its position, so the gateway can replay only what was missed;
   * the others wait for a snapshot. Refused pairs go in requests of their own, so a pair a
   * gateway still does not offer cannot sink the others'. Remembered until answered.
   */
  subscribeOps(nowMs: number, pairs?: Iterable<string>): ClientOp[] {
    const names = pairs === undefined ? [...this.states.keys()] : [...pairs].filter((p) => this.states.has(p));
    const since: Record<string, StreamPosition> = {};
    for (const pair of names) {
      const state = this.state(pair);
      const book = state.book;
      if (state.synced && book.epoch !== null) since[pair] = { epoch: book.epoch, seq: book.seq };
      else state.waitingSinceMs = nowMs;
    }
    const accepted = names.filter((p) => this.state(p).refusal === null);
    const refused = names.filter((p) => this.state(p).refusal !== null);
    const ops: ClientOp[] = [];
    for (const group of [accepted, refused]) {
      for (let start = 0; start < group.length; start += MAX_PAIRS_PER_REQUEST) {
        const chunk = group.slice(start, start + MAX_PAIRS_PER_REQUEST);
        const positions: Record<string, StreamPosition> = {};
        let any = false;
        for (const p of chunk) {
          const position = since[p];
          if (position !== undefined) {
            positions[p] = position;
            any = true;
          }
        }
        const id = this.nextId();
        ops.push(any ? { op: "subscribe", pairs: chunk, id, since: positions } : { op: "subscribe", pairs: chunk, id });
        this.inflight.set(id, chunk);
      }
    }
    return ops;
  }

  /** A new connection: forget the old one's ops and answers, queue the subscribe of every pair. */
  beginConnection(nowMs: number): void {
    this.connectionLost();
    this.outbox.push(...this.subscribeOps(nowMs));
  }

  /** Ops queued for the old connection are void: the next one subscribes everything again. */
  connectionLost(): void {
    this.outbox.clear();
    this.inflight.clear();
  }

  queue(...ops: ClientOp[]): void {
    this.outbox.push(...ops);
  }

  get hasOps(): boolean {
    return this.outbox.length > 0;
  }

  /** The next op to send, or undefined. A resync's retry period counts from its sending. */
  nextOp(nowMs: number): ClientOp | undefined {
    const op = this.outbox.shift();
    if (op !== undefined && op.op === "resync") {
      const state = this.states.get(op.pair);
      if (state !== undefined && !state.synced) state.waitingSinceMs = nowMs;
    }
    return op;
  }

  /**
   * Ask again for every snapshot awaited longer than `resyncRetryMs` (quiet pairs too), and
   * subscribe again the refused pairs whose retry time has come.
   */
  requestOverdue(nowMs: number): void {
    const due: string[] = [];
    for (const state of this.states.values()) {
      if (state.synced) continue;
      if (state.refusal !== null) {
        if (state.retryAtMs === null || nowMs >= state.retryAtMs) {
          state.retryAtMs = nowMs + this.refusalDelayMs(state.refusals);
          due.push(state.pair);
        }
        continue;
      }
      const waited = state.waitingSinceMs;
      if (waited === null || nowMs - waited >= this.opts.resyncRetryMs) {
        this.hooks.log("info", `${state.pair}: still no snapshot; asking again`);
        this.requestSnapshot(state, nowMs);
      }
    }
    if (due.length > 0) {
      this.hooks.log("info", `asking again for ${due.length} refused pairs: ${due.slice(0, 10).join(", ")}`);
      this.outbox.push(...this.subscribeOps(nowMs, due));
    }
  }

  // --- answers to our requests ---------------------------------------------------------

  /** `subscribed`: the request's pairs are followed; a refusal they had is over. */
  onAck(ack: AckMessage): void {
    if (ack.type !== "subscribed" || typeof ack.id !== "number") return;
    const pairs = this.inflight.get(ack.id);
    this.inflight.delete(ack.id);
    for (const pair of pairs ?? []) {
      const state = this.states.get(pair);
      if (state !== undefined && state.refusal !== null) {
        state.refusal = null;
        state.refusals = 0;
        state.retryAtMs = null;
      }
    }
  }

  /** An error answer; true if it refused one of our subscribes (then handled here). */
  onError(error: ErrorMessage, nowMs: number): boolean {
    const pairs = typeof error.id === "number" ? this.inflight.get(error.id) : undefined;
    if (pairs === undefined) return false;
    this.inflight.delete(error.id as number);
    this.stats.subscribeRefusals += 1;
    const states = pairs.map((p) => this.states.get(p)).filter((s): s is PairState => s !== undefined);
    for (const state of states) this.unsync(state, "refused");
    this.outbox.dropResyncs(pairs); // of a pair not subscribed, the gateway refuses them too
    if (error.code === "unknown_pair" && states.length > 1) {
      const half = states.length >> 1;
      this.hooks.log("info", `gateway refused ${states.length} pairs (${error.message}); asking in halves`);
      for (const group of [states.slice(0, half), states.slice(half)]) {
        this.outbox.push(...this.subscribeOps(nowMs, group.map((s) => s.pair)));
      }
      return true;
    }
    const refusal = { code: error.code, message: error.message };
    let delayMs = 0;
    for (const state of states) {
      state.refusal = refusal;
      state.refusals += 1;
      state.waitingSinceMs = null;
      delayMs = this.refusalDelayMs(state.refusals - 1);
      state.retryAtMs = nowMs + delayMs;
    }
    if (states.length > 0) {
      const names = states.slice(0, 10).map((s) => s.pair).join(", ");
      this.hooks.log(
        "error",
        `gateway refused to subscribe ${names}: ${error.code}: ${error.message} (asking again in ${(delayMs / 1000).toFixed(1)} s)`,
      );
    }
    return true;
  }

  private refusalDelayMs(attempt: number): number {
    return backoffDelay(this.opts.refusalBackoff, attempt, this.opts.rand) * 1000;
  }

  // --- the rules -----------------------------------------------------------------------

  onSnapshot(snap: SnapshotMessage, receivedMs: number): void {
    const state = this.states.get(snap.pair);
    if (state === undefined) {
      this.stats.unexpected += 1;
      return;
    }
    try {
      state.book.loadSnapshot(snap);
    } catch (exc) {
      if (exc instanceof ChecksumMismatchError) {
        this.stats.checksumFailures += 1;
        this.hooks.log("warn", `${snap.pair}: snapshot does not verify (${exc.message}); asking for another`);
        this.loseSync(state, receivedMs, "checksum");
      } else {
        this.stats.badFrames += 1;
        this.hooks.log("warn", `${snap.pair}: snapshot cannot be loaded (${String(exc)}); asking for another`);
        this.loseSync(state, receivedMs, "bad_message");
      }
      return;
    }
    const wasSynced = state.synced;
    state.synced = true;
    state.waitingSinceMs = null;
    state.refusal = null; // a snapshot: subscribed
    state.refusals = 0;
    state.retryAtMs = null;
    state.updates += 1;
    this.stats.snapshots += 1;
    if (!wasSynced) this.hooks.sync({ pair: snap.pair, synced: true });
    this.hooks.update({
      pair: snap.pair, kind: "snapshot", epoch: snap.epoch, seq: snap.seq, ts: snap.ts, xts: null,
      receivedMs, windowLatencyMs: receivedMs - snap.ts / 1e6, exchangeLatencyMs: null,
    });
  }

  onDelta(delta: DeltaMessage, receivedMs: number): void {
    const state = this.states.get(delta.pair);
    if (state === undefined) {
      this.stats.unexpected += 1;
      return;
    }
    if (!state.synced) {
      this.stats.ignoredDeltas += 1;
      if (state.refusal !== null) return; // in flight before the refusal; asked for on its own schedule
      const waited = state.waitingSinceMs;
      if (waited === null || receivedMs - waited >= this.opts.resyncRetryMs) {
        this.hooks.log("info", `${delta.pair}: still no snapshot; asking again`);
        this.requestSnapshot(state, receivedMs);
      }
      return;
    }
    const book = state.book;
    const epochBefore = book.epoch;
    let applied: boolean;
    try {
      applied = book.applyDelta(delta, this.opts.verifyChecksums);
    } catch (exc) {
      if (exc instanceof SequenceGapError) {
        this.stats.gaps += 1;
        this.hooks.log("warn", `${exc.message}; resyncing`);
        this.loseSync(state, receivedMs, delta.epoch === epochBefore ? "gap" : "epoch");
      } else if (exc instanceof ChecksumMismatchError) {
        this.stats.checksumFailures += 1;
        this.hooks.log("warn", `${exc.message}; resyncing`);
        this.loseSync(state, receivedMs, "checksum");
      } else {
        this.stats.badFrames += 1;
        this.hooks.log("warn", `${delta.pair}: delta cannot be applied (${String(exc)}); resyncing`);
        this.loseSync(state, receivedMs, "bad_message");
      }
      return;
    }
    if (!applied) {
      this.stats.staleDeltas += 1;
      return;
    }
    state.updates += 1;
    this.stats.deltas += 1;
    const windowMs = receivedMs - delta.ts / 1e6;
    const exchangeMs = receivedMs - delta.xts / 1e6;
    this.stats.recordLatency(exchangeMs, windowMs);
    this.hooks.update({
      pair: delta.pair, kind: "delta", epoch: delta.epoch, seq: delta.seq, ts: delta.ts, xts: delta.xts,
      receivedMs, windowLatencyMs: windowMs, exchangeLatencyMs: exchangeMs,
    });
  }

  private unsync(state: PairState, reason: UnsyncReason): void {
    if (!state.synced) return;
    state.synced = false;
    this.hooks.sync({ pair: state.pair, synced: false, reason });
  }

  /** Distrust the pair's book and ask for a fresh snapshot; its deltas wait for it. */
  private loseSync(state: PairState, nowMs: number, reason: UnsyncReason): void {
    this.unsync(state, reason);
    this.requestSnapshot(state, nowMs);
  }

  /** Queue one resync for the pair, unless one is queued already. */
  private requestSnapshot(state: PairState, nowMs: number): void {
    state.waitingSinceMs = nowMs;
    if (this.outbox.hasResync(state.pair)) return;
    this.stats.resyncs += 1;
    this.outbox.push({ op: "resync", pair: state.pair, id: this.nextId() });
  }
}
