/**
 * A scripted gateway for client tests: a real WebSocket server (the `ws` package) on
 * 127.0.0.1, port 0. The test drives it inline: `const conn = await server.accept()`,
 * `await conn.nextOp()`, `conn.send(...)`. `server.refuse(503, "1")` answers the next
 * handshake with that status. Every wait is bounded; nothing sleeps.
 */

import type { AddressInfo } from "node:net";

import { WebSocketServer, type WebSocket } from "ws";

export const T = 5000; // ms: every wait in these tests is bounded by it

export function within<X>(promise: Promise<X>, ms = T, what = "condition"): Promise<X> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A queue whose `next()` waits for the next item. */
export class Inbox<X> {
  private items: X[] = [];
  private waiting: ((x: X) => void)[] = [];
  push(item: X): void {
    const w = this.waiting.shift();
    if (w !== undefined) w(item);
    else this.items.push(item);
  }
  next(ms = T, what = "item"): Promise<X> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return within(new Promise<X>((resolve) => this.waiting.push(resolve)), ms, what);
  }
  get pending(): X[] {
    return [...this.items];
  }
}

export type Op = Record<string, unknown> & { op: string };

export class ScriptedConnection {
  readonly ops = new Inbox<Op>();
  readonly received: Op[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  autoPong = false;

  constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on("message", (data) => {
      const op = JSON.parse(data.toString()) as Op;
      this.received.push(op);
      if (this.autoPong && op.op === "ping") ws.send(JSON.stringify({ type: "pong", id: op["id"] }));
      this.ops.push(op);
    });
  }

  /** The next op the client sent, which must be `op`. */
  async expect(op: string, ms = T): Promise<Op> {
    const got = await this.ops.next(ms, `the client's ${op}`);
    if (got.op !== op) throw new Error(`expected ${op}, client sent ${JSON.stringify(got)}`);
    return got;
  }

  /** One frame: a message object, or an array frame of several. Strings are sent as they are. */
  send(...messages: unknown[]): void {
    if (messages.length === 1 && typeof messages[0] === "string") this.ws.send(messages[0]);
    else this.ws.send(JSON.stringify(messages.length === 1 ? messages[0] : messages));
  }

  close(code = 1000, reason = ""): void {
    this.ws.close(code, reason);
  }

  /** Cut the TCP connection without a closing handshake. */
  drop(): void {
    this.ws.terminate();
  }
}

export class ScriptedServer {
  private wss!: WebSocketServer;
  readonly connections = new Inbox<ScriptedConnection>();
  readonly handshakes: { at: number; status: number }[] = [];
  private refusals: [number, string | null][] = [];

  static async start(): Promise<ScriptedServer> {
    const server = new ScriptedServer();
    await new Promise<void>((resolve) => {
      server.wss = new WebSocketServer(
        {
          host: "127.0.0.1",
          port: 0,
          perMessageDeflate: false,
          verifyClient: (_info, cb) => {
            const refusal = server.refusals.shift();
            const at = performance.now();
            if (refusal === undefined) {
              server.handshakes.push({ at, status: 101 });
              cb(true);
            } else {
              server.handshakes.push({ at, status: refusal[0] });
              const headers: Record<string, string> = refusal[1] === null ? {} : { "Retry-After": refusal[1] };
              cb(false, refusal[0], "refused by the test", headers);
            }
          },
        },
        resolve,
      );
    });
    server.wss.on("connection", (ws) => server.connections.push(new ScriptedConnection(ws)));
    return server;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/ws`;
  }

  /** Answer the next `times` handshakes with `status` (and Retry-After) instead of upgrading. */
  refuse(status: number, retryAfter: string | null = null, times = 1): void {
    for (let i = 0; i < times; i++) this.refusals.push([status, retryAfter]);
  }

  accept(ms = T): Promise<ScriptedConnection> {
    return this.connections.next(ms, "a connection");
  }

  async stop(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

/** Client options for tests: reconnects within tens of milliseconds, no keepalive, quiet logs. */
export const FAST = {
  backoff: { initial: 0.01, maximum: 0.05, factor: 2, jitter: 0.5 },
  keepaliveMs: 0,
  log: () => {},
} as const;
