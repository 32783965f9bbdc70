/**
 * The WebSocket under the client: the browser's `WebSocket`, or the `ws` package in Node.js.
 *
 * Both look the same to the client: `open`, text frames, `close` with its code, or a failed
 * attempt. Only `ws` can tell *why* a handshake failed: a gateway refusing it for load answers
 * HTTP 503 or 429 with `Retry-After` (protocol.md section 9), which the client honours. A
 * browser's WebSocket hides the HTTP status (a refused handshake is an error like any other),
 * so there the client's growing backoff is all it has.
 */

import { parseRetryAfter } from "./backoff.js";

/** A handshake a gateway refused for load: the HTTP status and `Retry-After` in seconds, if given. */
export interface HandshakeRefusal {
  readonly status: number;
  readonly retryAfter: number | null;
}

export interface TransportHandlers {
  open(): void;
  message(text: string): void;
  /** The open connection ended (1006 when it dropped without a close frame). */
  close(code: number, reason: string): void;
  /** The attempt failed before the connection opened. */
  fail(error: Error, refusal: HandshakeRefusal | null): void;
}

export interface Transport {
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

export interface ConnectOptions {
  readonly maxFrameBytes: number;
  readonly openTimeoutMs: number;
}

/** Opens one connection attempt; every outcome comes back through `handlers`, exactly once each. */
export type Connector = (url: string, handlers: TransportHandlers, options: ConnectOptions) => Transport;

/** The constructor of a browser-style WebSocket (the browser's own, or a compatible one). */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

const OVERLOAD = new Set([429, 503]);

/** A connector over a browser-style WebSocket constructor. */
export function browserConnector(WS: WebSocketConstructor): Connector {
  return (url, handlers, options) => {
    const ws = new WS(url);
    ws.binaryType = "arraybuffer";
    let opened = false;
    let ended = false;
    const decoder = new TextDecoder();
    const timer = setTimeout(() => {
      if (!opened && !ended) {
        ended = true;
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        ws.close();
        handlers.fail(new Error(`no handshake within ${options.openTimeoutMs} ms`), null);
      }
    }, options.openTimeoutMs);
    ws.onopen = () => {
      opened = true;
      clearTimeout(timer);
      handlers.open();
    };
    ws.onmessage = (ev) => {
      const data = ev.data;
      handlers.message(typeof data === "string" ? data : decoder.decode(data as ArrayBuffer));
    };
    ws.onclose = (ev) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      if (opened) handlers.close(ev.code, ev.reason);
      else handlers.fail(new Error(`handshake failed (close code ${ev.code})`), null);
    };
    return {
      send: (text) => ws.send(text),
      close: (code, reason) => ws.close(code, reason),
    };
  };
}

/** The subset of the `ws` package's WebSocket the connector uses. */
interface NodeWs {
  on(event: "open", fn: () => void): void;
  on(event: "message", fn: (data: { toString(): string }, isBinary: boolean) => void): void;
  on(event: "close", fn: (code: number, reason: { toString(): string }) => void): void;
  on(event: "error", fn: (err: Error) => void): void;
  on(event: "unexpected-response", fn: (req: unknown, res: NodeResponse) => void): void;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}
interface NodeResponse {
  statusCode?: number;
  headers: Record<string, string | string[] | undefined>;
  resume?(): void;
}
type NodeWsConstructor = new (url: string, options: Record<string, unknown>) => NodeWs;

/** A connector over the `ws` package's WebSocket class (Node.js): it sees 503/429 refusals. */
export function nodeConnector(WS: NodeWsConstructor): Connector {
  return (url, handlers, options) => {
    const ws = new WS(url, {
      perMessageDeflate: false, // every client gets the same bytes (protocol.md section 1)
      maxPayload: options.maxFrameBytes,
      handshakeTimeout: options.openTimeoutMs,
    });
    let opened = false;
    let ended = false;
    let refusal: HandshakeRefusal | null = null;
    let status: number | null = null;
    ws.on("unexpected-response", (_req, res) => {
      status = res.statusCode ?? 0;
      if (OVERLOAD.has(status)) {
        const header = res.headers["retry-after"];
        refusal = { status, retryAfter: parseRetryAfter(Array.isArray(header) ? header[0] : header) };
      }
      res.resume?.();
      ws.terminate(); // aborts the handshake: "error" then "close" follow
    });
    ws.on("open", () => {
      opened = true;
      handlers.open();
    });
    ws.on("message", (data) => handlers.message(data.toString()));
    ws.on("error", (err) => {
      if (opened || ended) return; // an open connection reports through "close"
      ended = true;
      const error = status === null ? err : new Error(`handshake refused: HTTP ${status}`);
      handlers.fail(error, refusal);
    });
    ws.on("close", (code, reason) => {
      if (ended) return;
      ended = true;
      if (opened) handlers.close(code, reason.toString());
      else handlers.fail(new Error(`handshake failed (close code ${code})`), refusal);
    });
    return {
      send: (text) => ws.send(text),
      close: (code, reason) => ws.close(code, reason),
    };
  };
}

function isNode(): boolean {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof proc?.versions?.node === "string";
}

/**
 * The default connector: in Node.js the `ws` package (it reports 503/429 refusals with
 * `Retry-After`), else the global `WebSocket` (browsers, Deno, Bun).
 */
export async function defaultConnector(): Promise<Connector> {
  if (isNode()) {
    const specifier = "ws"; // not bundled for browsers: a variable specifier is left alone
    try {
      const mod = (await import(specifier)) as { WebSocket?: NodeWsConstructor; default?: NodeWsConstructor };
      const WS = mod.WebSocket ?? mod.default;
      if (WS !== undefined) return nodeConnector(WS);
    } catch {
      // fall through to a global WebSocket (Node.js 22 has one)
    }
  }
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global === undefined) {
    throw new Error("no WebSocket: install the 'ws' package (Node.js) or pass options.connector");
  }
  return browserConnector(global);
}
