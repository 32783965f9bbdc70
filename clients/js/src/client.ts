/**
 * `BookClient`: local order books kept equal to the source over one WebSocket connection,
 * in browsers and Node.js. The counterpart of the Python `clients.BookClient`:
 *
 *     const client = new BookClient("ws://127.0.0.1:8765/ws", ["BTC-USD", "ETH-USD"]);
 *     client.on("update", (u) => console.log(u.pair, u.seq, client.book(u.pair).bestBid()));
 *     await client.start();
 *     await client.waitSynced(undefined, 10_000);
 *
 * It subscribes, keeps one verified book per pair (the rules live in book-set.ts), resyncs
 * by itself on a gap, a new epoch or a checksum mismatch, and reconnects with capped,
 * jittered backoff when the connection drops, asking the gateway with `since` to replay only
 * what it missed. Every op it sends waits for its own op budget, so the gateway never closes
 * it for sending too fast; a handshake refused for load (503/429) is retried no sooner than
 * `Retry-After` (Node.js; browsers cannot see it). Nothing that arrives on the wire throws:
 * bad frames are counted in `stats`.
 */

import {
  type BackoffOptions,
  afterRefusal,
  backoffDelay,
  checkBackoff,
  DEFAULT_BACKOFF,
  OpPacer,
  REFUSAL_BACKOFF,
} from "./backoff.js";
import { type BookUpdate, BookSet, type SubscriptionRefusal, type SyncChange } from "./book-set.js";
import { instrument, type InstrumentSpec } from "./instruments.js";
import { type ClientOp, decodeFrame, encodeOp, type ErrorMessage } from "./messages.js";
import { ClientStats } from "./stats.js";
import {
  type Connector,
  defaultConnector,
  type HandshakeRefusal,
  type Transport,
} from "./transport.js";
import { BookView } from "./view.js";

export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001; // the gateway shuts down or drains: reconnect, elsewhere if we can
export const CLOSE_POLICY_VIOLATION = 1008; // we broke a limit (ops too fast): back off, reconnect
export const CLOSE_TOO_SLOW = 4008; // our backlog stayed over the gateway's mark: reconnect
const CLOSE_KEEPALIVE = 4000; // ours: no answer to our keepalive ping

export interface ClientOptions {
  /** Reconnect delays, seconds ({initial: 0.25, maximum: 10, factor: 2, jitter: 0.5}). */
  readonly backoff: BackoffOptions;
  /** Reject `start()` if the first connection fails (a wrong URL is worth seeing at once), except a 503/429. */
  readonly failFast: boolean;
  /** Handshake timeout, ms (5000). */
  readonly openTimeoutMs: number;
  /** Largest frame accepted, bytes (16 MiB; Node.js only). */
  readonly maxFrameBytes: number;
  /** A connection that lived this long resets the backoff, ms (10000). */
  readonly stableAfterMs: number;
  /** Ask again for a snapshot that has not come after this long, ms (5000). */
  readonly resyncRetryMs: number;
  /** Verify every snapshot's and delta's checksum (true). */
  readonly verifyChecksums: boolean;
  /** Ops per second, with bursts of `opBurst` (10/s and 20: half the gateway's 20/s, bursts of 40). */
  readonly opRate: number;
  readonly opBurst: number;
  /** Delays before a refused pair is subscribed again, seconds (15-30 s doubling to 5-10 min). */
  readonly refusalBackoff: BackoffOptions;
  /** Send an app-level `ping` after this long without a frame, and drop the connection if
   *  nothing at all arrives within as long again, ms (20000; 0 disables). */
  readonly keepaliveMs: number;
  /** Pairs missing from the built-in catalogue, with their decimals. */
  readonly instruments: Readonly<Record<string, InstrumentSpec>>;
  /** How to open a WebSocket (default: `ws` in Node.js, the global WebSocket elsewhere). */
  readonly connector: Connector | null;
  /** Where the client's log lines go (default: console.warn/error for warn/error, nothing for info). */
  readonly log: (level: "info" | "warn" | "error", message: string) => void;
  /** Random numbers in [0, 1), for jitter (injectable for tests). */
  readonly rand: () => number;
}

function defaultLog(level: "info" | "warn" | "error", message: string): void {
  if (level === "error") console.error(`bookcast: ${message}`);
  else if (level === "warn") console.warn(`bookcast: ${message}`);
}

export const DEFAULT_OPTIONS: ClientOptions = {
  backoff: DEFAULT_BACKOFF,
  failFast: true,
  openTimeoutMs: 5000,
  maxFrameBytes: 16 * 2 ** 20,
  stableAfterMs: 10_000,
  resyncRetryMs: 5000,
  verifyChecksums: true,
  opRate: 10,
  opBurst: 20,
  refusalBackoff: REFUSAL_BACKOFF,
  keepaliveMs: 20_000,
  instruments: {},
  connector: null,
  log: defaultLog,
  rand: Math.random,
};

export class ClientError extends Error {
  override name = "ClientError";
}
/** The first connection failed (with `failFast`). */
export class ClientConnectError extends ClientError {
  override name = "ClientConnectError";
  constructor(
    readonly url: string,
    override readonly cause: Error,
  ) {
    super(`cannot connect to ${url}: ${cause.message}`);
  }
}
/** A request needs a connection and there is none right now. */
export class NotConnectedError extends ClientError {
  override name = "NotConnectedError";
}
/** The client was closed. */
export class ClientClosedError extends ClientError {
  override name = "ClientClosedError";
}
/** The gateway refused to subscribe some pairs (from `waitSynced`). */
export class SubscriptionRefusedError extends ClientError {
  override name = "SubscriptionRefusedError";
  readonly pairs: string[];
  readonly code: string;
  constructor(readonly refusals: ReadonlyMap<string, SubscriptionRefusal>) {
    const [first] = refusals.values();
    super(`gateway refused ${[...refusals.keys()].join(", ")}: ${first?.code}: ${first?.message}`);
    this.pairs = [...refusals.keys()];
    this.code = first?.code ?? "";
  }
}
export class TimeoutError extends ClientError {
  override name = "TimeoutError";
}

/** The connection's life, as the `connection` event reports it. */
export type ConnectionEvent =
  | { readonly type: "connecting"; readonly url: string; readonly attempt: number }
  | { readonly type: "open"; readonly url: string }
  | { readonly type: "closed"; readonly url: string; readonly code: number; readonly reason: string }
  | {
      readonly type: "failed";
      readonly url: string;
      readonly error: string;
      /** A refusal for load (503/429) and its Retry-After, when the transport can see it. */
      readonly refusal: HandshakeRefusal | null;
    }
  | { readonly type: "waiting"; readonly url: string; readonly delayMs: number };

export interface ClientEvents {
  /** A snapshot or delta was applied (and verified). */
  update: BookUpdate;
  /** A pair became synced, or stopped being synced (with why). */
  sync: SyncChange;
  /** The connection opened, closed, failed, or the client waits before the next attempt. */
  connection: ConnectionEvent;
  /** An `error` message from the gateway that answered none of our subscribes. */
  gatewayError: ErrorMessage;
}

type Listener<T> = (event: T) => void;

export type ConnectionState = "idle" | "connecting" | "open" | "waiting" | "closed";

const now = (): number => Date.now();
const mono = (): number => globalThis.performance.now() / 1000;

export class BookClient {
  readonly stats = new ClientStats();
  readonly options: ClientOptions;
  private readonly urls: string[];
  private urlIndex = 0;
  private readonly books: BookSet;
  private readonly listeners: { [K in keyof ClientEvents]: Set<Listener<ClientEvents[K]>> } = {
    update: new Set(),
    sync: new Set(),
    connection: new Set(),
    gatewayError: new Set(),
  };
  private transport: Transport | null = null;
  private connector: Connector | null;
  private running: Promise<void> | null = null;
  private closedFlag = false;
  private wake: (() => void) | null = null; // ends the current sleep early (close)
  private endSession: ((end: { code: number; reason: string }) => void) | null = null;
  private readonly notBefore: number[]; // per URL: mono() before which not to connect
  private pacer: OpPacer | null = null;
  private pumpTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private keepalive: ReturnType<typeof setInterval> | null = null;
  private lastFrameMono = 0;
  private keepalivePingAt: number | null = null;
  private readonly pings = new Map<number, { sentAt: number; resolve: (s: number) => void; reject: (e: Error) => void }>();
  private readonly waiters = new Set<() => void>();
  private state: ConnectionState = "idle";
  private refusalNow: HandshakeRefusal | null = null;

  /**
   * Books for `pairs` from the gateway(s) at `url`. A list of URLs: the client moves to the
   * next one when an attempt fails or a gateway closes with 1001 ("going away"). Pairs missing
   * from the catalogue (and from `options.instruments`) throw UnknownPairError here.
   */
  constructor(url: string | readonly string[], pairs: Iterable<string>, options: Partial<ClientOptions> = {}) {
    const urls = typeof url === "string" ? [url] : [...url];
    if (urls.length === 0) throw new RangeError("BookClient needs at least one URL");
    for (const u of urls) {
      if (!/^wss?:\/\/[^/]/.test(u)) throw new RangeError(`not a ws:// or wss:// URL: ${JSON.stringify(u)}`);
    }
    this.urls = urls;
    this.options = { ...DEFAULT_OPTIONS, ...options };
    const opts = this.options;
    checkBackoff(opts.backoff);
    checkBackoff(opts.refusalBackoff);
    if (!(opts.opRate > 0) || !(opts.opBurst >= 1)) throw new RangeError("opRate must be > 0 and opBurst >= 1");
    this.connector = opts.connector;
    this.notBefore = urls.map(() => 0);
    this.books = new BookSet(
      this.stats,
      {
        update: (u) => this.emit("update", u),
        sync: (c) => this.emit("sync", c),
        log: (level, message) => opts.log(level, message),
      },
      {
        verifyChecksums: opts.verifyChecksums,
        resyncRetryMs: opts.resyncRetryMs,
        refusalBackoff: opts.refusalBackoff,
        rand: opts.rand,
      },
    );
    this.books.add(this.instrumentsOf(pairs), now());
  }

  private instrumentsOf(pairs: Iterable<string>): ReturnType<typeof instrument>[] {
    return [...new Set(pairs)].map((p) => instrument(p, this.options.instruments));
  }

  // --- events ------------------------------------------------------------------------

  /** Listen to an event; returns a function that stops listening. Listeners must be quick. */
  on<K extends keyof ClientEvents>(name: K, listener: Listener<ClientEvents[K]>): () => void {
    this.listeners[name].add(listener);
    return () => this.off(name, listener);
  }

  off<K extends keyof ClientEvents>(name: K, listener: Listener<ClientEvents[K]>): void {
    this.listeners[name].delete(listener);
  }

  private emit<K extends keyof ClientEvents>(name: K, event: ClientEvents[K]): void {
    for (const listener of this.listeners[name]) {
      try {
        listener(event);
      } catch (exc) {
        this.stats.callbackErrors += 1;
        this.options.log("error", `${name} listener failed: ${String(exc)}`);
      }
    }
  }

  // --- lifecycle -------------------------------------------------------------------

  /** The URL in use (or to be tried next). */
  get url(): string {
    return this.urls[this.urlIndex] as string;
  }

  get connected(): boolean {
    return this.transport !== null;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** idle (not started), connecting, open, waiting (before the next attempt), closed. */
  get connectionState(): ConnectionState {
    return this.state;
  }

  /** While not connected: the busy gateway's refusal (503/429) of the last attempt, if any. */
  get lastRefusal(): HandshakeRefusal | null {
    return this.refusalNow;
  }

  /**
   * Connect and subscribe. Resolves once the first connection is open. With `failFast` a
   * failed first attempt rejects with ClientConnectError, except a refusal for load (503/429):
   * then, as without `failFast`, the client keeps trying in the background and this resolves.
   */
  async start(): Promise<void> {
    if (this.running !== null) return;
    if (this.closedFlag) throw new ClientClosedError("this client was closed; create a new one");
    this.connector ??= await defaultConnector();
    let first: Link | null = null;
    let attempt = 0;
    if (this.options.failFast) {
      try {
        first = await this.open();
      } catch (exc) {
        const failure = exc as AttemptFailure;
        if (failure.refusal === null) {
          this.connectFailed(failure, attempt, false);
          this.closedFlag = true;
          this.setState("closed");
          throw new ClientConnectError(failure.url, failure.error);
        }
        this.connectFailed(failure, attempt);
        attempt = 1;
      }
    }
    this.running = this.run(first, attempt).catch((exc: unknown) => {
      this.options.log("error", `connection loop failed; the client is closed: ${String(exc)}`);
      this.shutDown();
    });
  }

  /** Close the connection (1000), stop reconnecting, reject every pending wait. */
  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.shutDown();
    await this.running;
  }

  private shutDown(): void {
    this.closedFlag = true;
    const transport = this.transport;
    if (transport !== null) {
      try {
        transport.close(CLOSE_NORMAL, "client closing");
      } catch {
        // already closing
      }
    }
    this.endSession?.({ code: CLOSE_NORMAL, reason: "client closing" });
    this.wake?.();
    this.failPings(new ClientClosedError("client closed"));
    this.setState("closed");
    this.notify();
  }

  // --- reading books -------------------------------------------------------------

  get pairs(): string[] {
    return this.books.pairs;
  }

  /** A live, read-only view of `pair`'s book (RangeError if not followed). */
  book(pair: string): BookView {
    return new BookView(this.books.state(pair));
  }

  /** The pairs the gateway refused to subscribe (not synced, asked again slowly), with why. */
  get refused(): Map<string, SubscriptionRefusal> {
    return this.books.refusals();
  }

  /**
   * Resolve once `predicate()` is true, checking after every frame and state change. Rejects
   * with TimeoutError after `timeoutMs`, ClientClosedError if the client closes, or whatever
   * `predicate` throws.
   */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const check = (): void => {
        let done: boolean;
        try {
          if (this.closedFlag && !predicate()) throw new ClientClosedError("client closed while waiting");
          done = predicate();
        } catch (exc) {
          finish();
          reject(exc);
          return;
        }
        if (done) {
          finish();
          resolve();
        }
      };
      const finish = (): void => {
        this.waiters.delete(check);
        if (timer !== undefined) clearTimeout(timer);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          finish();
          reject(new TimeoutError(`not done within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.waiters.add(check);
      check();
    });
  }

  /**
   * Resolve once every pair in `pairs` (default: all) has a verified book. Rejects with
   * SubscriptionRefusedError as soon as the gateway's latest answer for one of them is a refusal.
   */
  waitSynced(pairs?: Iterable<string>, timeoutMs?: number): Promise<void> {
    const names = pairs === undefined ? undefined : [...pairs];
    for (const pair of names ?? []) this.books.state(pair); // RangeError now rather than a timeout later
    return this.waitFor(() => {
      const refused = this.books.refusals(names);
      if (refused.size > 0) throw new SubscriptionRefusedError(refused);
      return this.books.allSynced(names);
    }, timeoutMs);
  }

  private notify(): void {
    for (const check of [...this.waiters]) check();
  }

  // --- requests at run time -----------------------------------------------------------

  /** Follow more pairs; returns the new ones. Sent now if connected, else with the next connection. */
  subscribe(pairs: Iterable<string>): string[] {
    const added = this.books.add(this.instrumentsOf(pairs), now());
    if (added.length > 0 && this.transport !== null) {
      this.books.queue(...this.books.subscribeOps(now(), added));
      this.pump();
    }
    this.notify();
    return added;
  }

  /** Stop following pairs; returns those that were followed. */
  unsubscribe(pairs: Iterable<string>): string[] {
    const removed = this.books.remove(pairs);
    if (removed.length > 0 && this.transport !== null) {
      for (let i = 0; i < removed.length; i += 1024) {
        this.books.queue({ op: "unsubscribe", pairs: removed.slice(i, i + 1024), id: this.books.nextId() });
      }
      this.pump();
    }
    this.notify();
    return removed;
  }

  /** The round trip of an app-level `ping`, ms (not counting the wait for the op budget). */
  ping(timeoutMs = 5000): Promise<number> {
    if (this.transport === null) return Promise.reject(new NotConnectedError("not connected"));
    const id = this.books.nextId();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(id);
        reject(new TimeoutError(`no pong within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pings.set(id, {
        sentAt: Number.NaN,
        resolve: (ms) => {
          clearTimeout(timer);
          resolve(ms);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.books.queue({ op: "ping", id });
      this.pump();
    });
  }

  /**
   * Handle one gateway frame as if it had arrived on the connection (replaying a recorded
   * stream, tests). Never throws: bad input is counted in `stats.badFrames`.
   */
  receive(text: string, receivedMs: number = now()): void {
    this.onFrame(text, receivedMs);
    this.pump();
  }

  // --- the connection loop ------------------------------------------------------------

  private setState(state: ConnectionState): void {
    this.state = state;
  }

  /** One attempt at the current URL: resolves with the open link, rejects with an AttemptFailure. */
  private open(): Promise<Link> {
    const url = this.url;
    const connector = this.connector as Connector;
    this.setState("connecting");
    this.emit("connection", { type: "connecting", url, attempt: this.stats.connects + this.stats.connectFailures });
    return new Promise<Link>((resolve, reject) => {
      const link: Link = { transport: null, live: true, end: null };
      let settled = false;
      const handlers = {
        open: (): void => {
          settled = true;
          resolve(link);
        },
        // A link the client gave up on (keepalive) may still deliver: it is ignored.
        message: (text: string): void => {
          if (link.live) this.onFrame(text, now());
        },
        close: (code: number, reason: string): void => link.end?.({ code, reason }),
        fail: (error: Error, refusal: HandshakeRefusal | null): void => {
          if (settled) return;
          settled = true;
          link.live = false;
          reject(new AttemptFailure(url, error, refusal));
        },
      };
      try {
        link.transport = connector(url, handlers, {
          maxFrameBytes: this.options.maxFrameBytes,
          openTimeoutMs: this.options.openTimeoutMs,
        });
      } catch (exc) {
        settled = true;
        reject(new AttemptFailure(url, exc instanceof Error ? exc : new Error(String(exc)), null));
      }
    });
  }

  private async run(first: Link | null, attempt: number): Promise<void> {
    let transport = first;
    let wait = false; // the very first attempt (without failFast) goes at once
    while (!this.closedFlag) {
      if (transport === null) {
        let delay = wait ? backoffDelay(this.options.backoff, attempt, this.options.rand) : 0;
        // A gateway that refused us for load is not asked again before it said.
        delay = Math.max(delay, (this.notBefore[this.urlIndex] as number) - mono());
        if (delay > 0) {
          this.setState("waiting");
          this.emit("connection", { type: "waiting", url: this.url, delayMs: delay * 1000 });
          this.notify();
          if (await this.sleep(delay)) return;
        }
        wait = true;
        try {
          transport = await this.open();
        } catch (exc) {
          if (!(exc instanceof AttemptFailure)) throw exc;
          this.connectFailed(exc, attempt);
          attempt += 1;
          continue;
        }
        if (this.closedFlag) {
          transport.transport?.close(CLOSE_NORMAL, "client closing");
          return;
        }
      }
      const opened = mono();
      const { code, reason } = await this.session(transport);
      transport = null;
      if (this.closedFlag) return;
      this.stats.disconnects += 1;
      wait = true;
      if (code === CLOSE_POLICY_VIOLATION) {
        this.options.log("error", `gateway closed the connection for a policy violation: ${reason || "no reason"}`);
        attempt += 1;
      } else if (code === CLOSE_GOING_AWAY) {
        this.options.log("info", `gateway going away (${reason || "no reason"}); reconnecting`);
        this.advanceUrl();
        attempt = 0;
      } else {
        this.options.log("warn", `connection lost (code ${code} ${reason}); reconnecting`);
        attempt = mono() - opened >= this.options.stableAfterMs / 1000 ? 0 : attempt + 1;
      }
    }
  }

  /**
   * Count and report a failed attempt and move to the next URL. A refusal for load (503/429)
   * sets when that gateway may be tried again: its Retry-After (or the backoff's ceiling) as a
   * floor, jitter above it.
   */
  private connectFailed(failure: AttemptFailure, attempt: number, retrying = true): void {
    const refusal = failure.refusal;
    if (refusal === null) {
      this.stats.connectFailures += 1;
      if (retrying) this.options.log("warn", `cannot connect to ${failure.url}: ${failure.error.message}; retrying`);
    } else {
      this.stats.handshakeRefusals += 1;
      this.refusalNow = refusal;
      const delay = afterRefusal(this.options.backoff, attempt, refusal.retryAfter, this.options.rand);
      this.notBefore[this.urlIndex] = mono() + delay;
      this.options.log(
        "warn",
        `${failure.url} is busy (HTTP ${refusal.status}, Retry-After ${refusal.retryAfter ?? "none"}); trying it again in ${delay.toFixed(1)} s`,
      );
    }
    this.emit("connection", { type: "failed", url: failure.url, error: failure.error.message, refusal });
    this.advanceUrl();
    this.notify();
  }

  private advanceUrl(): void {
    this.urlIndex = (this.urlIndex + 1) % this.urls.length;
  }

  /** Sleep unless the client closes first (then true). */
  private sleep(seconds: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve(false);
      }, seconds * 1000);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve(true);
      };
    });
  }

  /** Run one open connection until it ends; resolves with its close code and reason. */
  private session(link: Link): Promise<{ code: number; reason: string }> {
    const opts = this.options;
    const transport = link.transport as Transport;
    this.refusalNow = null;
    this.stats.connects += 1;
    if (this.stats.connects > 1) this.stats.reconnects += 1;
    this.transport = transport;
    this.pacer = new OpPacer(opts.opRate, opts.opBurst, mono());
    this.lastFrameMono = mono();
    this.keepalivePingAt = null;
    this.setState("open");
    this.options.log("info", `connected to ${this.url} (${this.books.pairs.length} pairs)`);
    this.emit("connection", { type: "open", url: this.url });
    this.books.beginConnection(now()); // the subscribe of every pair goes first
    const ended = new Promise<{ code: number; reason: string }>((resolve) => {
      link.end = (end) => {
        link.live = false;
        link.end = null;
        resolve(end);
      };
      this.endSession = link.end;
    });
    this.watchdog = setInterval(() => {
      this.books.requestOverdue(now());
      this.pump();
    }, opts.resyncRetryMs);
    if (opts.keepaliveMs > 0) {
      this.keepalive = setInterval(() => this.checkKeepalive(), Math.max(50, opts.keepaliveMs / 4));
    }
    this.pump();
    this.notify();
    return ended.then((end) => {
      this.endSession = null;
      if (this.watchdog !== null) clearInterval(this.watchdog);
      if (this.keepalive !== null) clearInterval(this.keepalive);
      if (this.pumpTimer !== null) clearTimeout(this.pumpTimer);
      this.watchdog = this.keepalive = this.pumpTimer = null;
      this.transport = null;
      this.books.connectionLost();
      this.failPings(new NotConnectedError("connection lost"));
      if (!this.closedFlag) this.setState("waiting");
      this.emit("connection", { type: "closed", url: this.url, code: end.code, reason: end.reason });
      this.notify();
      return end;
    });
  }

  /** After `keepaliveMs` without a frame send a ping; after as long again with nothing, drop the link. */
  private checkKeepalive(): void {
    const idle = mono() - this.lastFrameMono;
    const period = this.options.keepaliveMs / 1000;
    if (this.keepalivePingAt !== null && mono() - this.keepalivePingAt >= period && idle >= period) {
      this.options.log("warn", `nothing from ${this.url} for ${idle.toFixed(0)} s; dropping the connection`);
      const transport = this.transport;
      this.endSession?.({ code: 1006, reason: "keepalive timeout" });
      try {
        transport?.close(CLOSE_KEEPALIVE, "keepalive timeout");
      } catch {
        // it is gone either way
      }
      return;
    }
    if (this.keepalivePingAt === null && idle >= period) {
      this.keepalivePingAt = mono();
      this.books.queue({ op: "ping", id: this.books.nextId() });
      this.pump();
    }
  }

  /** Send the queued ops in order, each after a token of the op budget. */
  private pump(): void {
    const transport = this.transport;
    const pacer = this.pacer;
    if (transport === null || pacer === null || this.pumpTimer !== null) return;
    while (this.books.hasOps) {
      const t = mono();
      const wait = pacer.wait(t);
      if (wait > 0) {
        this.stats.pacedOps += 1;
        this.pumpTimer = setTimeout(() => {
          this.pumpTimer = null;
          this.pump();
        }, Math.ceil(wait * 1000));
        return;
      }
      pacer.take(t);
      const op = this.books.nextOp(now()) as ClientOp;
      if (op.op === "ping") {
        const pending = this.pings.get(op.id);
        if (pending !== undefined) pending.sentAt = mono();
      }
      try {
        transport.send(encodeOp(op));
      } catch (exc) {
        this.options.log("error", `cannot send to the gateway (${String(exc)}); dropping the connection`);
        this.endSession?.({ code: 1006, reason: "send failed" });
        return;
      }
    }
  }

  // --- frames --------------------------------------------------------------------------

  private onFrame(text: string, receivedMs: number): void {
    const stats = this.stats;
    stats.frames += 1;
    stats.bytes += text.length;
    this.lastFrameMono = mono();
    this.keepalivePingAt = null;
    let messages;
    try {
      messages = decodeFrame(text);
    } catch (exc) {
      stats.badFrames += 1;
      this.logBad(text, exc);
      this.notify();
      return;
    }
    const books = this.books;
    for (const message of messages) {
      stats.messages += 1;
      try {
        switch (message.type) {
          case "delta":
            books.onDelta(message, receivedMs);
            break;
          case "snapshot":
            books.onSnapshot(message, receivedMs);
            break;
          case "subscribed":
          case "unsubscribed":
            books.onAck(message);
            if (message.recovered === true) {
              stats.recoveries += 1;
              this.options.log("info", `recovered ${message.pairs.join(", ")} without snapshots`);
            }
            break;
          case "pong": {
            const pending = typeof message.id === "number" ? this.pings.get(message.id) : undefined;
            if (pending !== undefined) {
              this.pings.delete(message.id as number);
              pending.resolve((mono() - pending.sentAt) * 1000);
            }
            break;
          }
          case "error":
            stats.errors += 1;
            if (!books.onError(message, receivedMs)) {
              this.options.log("warn", `gateway error ${message.code}: ${message.message} (request ${JSON.stringify(message.id)})`);
              const pending = typeof message.id === "number" ? this.pings.get(message.id) : undefined;
              if (pending !== undefined) {
                this.pings.delete(message.id as number);
                pending.reject(new ClientError(`gateway refused ping: ${message.code}: ${message.message}`));
              }
              this.emit("gatewayError", message);
            }
            break;
          default:
            break; // a type this client does not know: ignored
        }
      } catch (exc) {
        stats.badFrames += 1;
        this.logBad(text, exc);
      }
    }
    this.pump();
    this.notify();
  }

  private failPings(error: Error): void {
    for (const pending of this.pings.values()) pending.reject(error);
    this.pings.clear();
  }

  private logBad(text: string, exc: unknown): void {
    const count = this.stats.badFrames;
    if (count <= 10 || count % 1000 === 0) {
      this.options.log("warn", `bad frame #${count} ignored (${String(exc)}): ${text.slice(0, 120)}`);
    }
  }
}

/** One connection: its transport, and how its end is reported (internal). */
interface Link {
  transport: Transport | null;
  /** False once the connection ended or the client gave up on it: its frames are ignored. */
  live: boolean;
  end: ((end: { code: number; reason: string }) => void) | null;
}

/** Why one connection attempt failed (internal). */
class AttemptFailure extends Error {
  constructor(
    readonly url: string,
    readonly error: Error,
    readonly refusal: HandshakeRefusal | null,
  ) {
    super(error.message);
  }
}
