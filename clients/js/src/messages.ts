/**
 * Protocol v1 messages (protocol.md section 4) and the decoding of a gateway frame: one
 * message object, or a JSON array of them to be handled in order (section 3).
 *
 * Values stay as the wire has them: prices and quantities are strings, `ts`/`xts` are
 * nanoseconds as JavaScript numbers (exact to about 256 ns at today's dates, plenty for
 * latency in milliseconds), `seq` is an integer number.
 */

export type Levels = readonly (readonly [string, string])[];

export interface SnapshotMessage {
  readonly type: "snapshot";
  readonly pair: string;
  readonly epoch: string;
  readonly seq: number;
  readonly ts: number;
  readonly bids: Levels;
  readonly asks: Levels;
  readonly checksum: number;
}

export interface DeltaMessage {
  readonly type: "delta";
  readonly pair: string;
  readonly epoch: string;
  readonly seq: number;
  readonly ts: number;
  readonly xts: number;
  readonly bids: Levels;
  readonly asks: Levels;
  readonly checksum: number;
}

export interface AckMessage {
  readonly type: "subscribed" | "unsubscribed";
  readonly pairs: readonly string[];
  readonly id: unknown;
  readonly recovered?: boolean;
}

export interface PongMessage {
  readonly type: "pong";
  readonly id: unknown;
}

export interface ErrorMessage {
  readonly type: "error";
  readonly code: string;
  readonly message: string;
  readonly id: unknown;
}

/** A message of a type this client does not know: ignored (protocol.md section 4.3). */
export interface UnknownMessage {
  readonly type: "unknown";
  readonly raw: unknown;
}

export type ServerMessage =
  | SnapshotMessage
  | DeltaMessage
  | AckMessage
  | PongMessage
  | ErrorMessage
  | UnknownMessage;

export interface StreamPosition {
  readonly epoch: string;
  readonly seq: number;
}

export type ClientOp =
  | { readonly op: "subscribe"; readonly pairs: readonly string[]; readonly id: number; readonly since?: Readonly<Record<string, StreamPosition>> }
  | { readonly op: "unsubscribe"; readonly pairs: readonly string[]; readonly id: number }
  | { readonly op: "resync"; readonly pair: string; readonly id: number }
  | { readonly op: "ping"; readonly id: number };

export class DecodeError extends Error {
  override name = "DecodeError";
}

type Json = Record<string, unknown>;

function fail(what: string): never {
  throw new DecodeError(what);
}

function str(obj: Json, key: string): string {
  const v = obj[key];
  return typeof v === "string" ? v : fail(`${key} must be a string`);
}

function uint(obj: Json, key: string): number {
  const v = obj[key];
  return typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : fail(`${key} must be an integer >= 0`);
}

function num(obj: Json, key: string): number {
  const v = obj[key];
  return typeof v === "number" && Number.isFinite(v) ? v : fail(`${key} must be a number`);
}

function levels(obj: Json, key: string): Levels {
  const v = obj[key];
  if (!Array.isArray(v)) fail(`${key} must be a list`);
  for (const level of v as unknown[]) {
    if (!Array.isArray(level) || level.length !== 2 || typeof level[0] !== "string" || typeof level[1] !== "string") {
      fail(`${key} must hold [price, qty] string pairs`);
    }
  }
  return v as Levels;
}

function checksum(obj: Json): number {
  const v = uint(obj, "checksum");
  return v <= 0xffffffff ? v : fail("checksum must be below 2**32");
}

/** A decoded JSON object as a typed message; unknown types are kept, not rejected. */
export function messageFromObject(item: unknown): ServerMessage {
  if (item === null || typeof item !== "object" || Array.isArray(item)) fail("a message must be an object");
  const obj = item as Json;
  switch (obj["type"]) {
    case "delta":
      return {
        type: "delta", pair: str(obj, "pair"), epoch: str(obj, "epoch"), seq: uint(obj, "seq"),
        ts: num(obj, "ts"), xts: num(obj, "xts"), bids: levels(obj, "bids"), asks: levels(obj, "asks"),
        checksum: checksum(obj),
      };
    case "snapshot":
      return {
        type: "snapshot", pair: str(obj, "pair"), epoch: str(obj, "epoch"), seq: uint(obj, "seq"),
        ts: num(obj, "ts"), bids: levels(obj, "bids"), asks: levels(obj, "asks"), checksum: checksum(obj),
      };
    case "subscribed":
    case "unsubscribed": {
      const pairs = Array.isArray(obj["pairs"]) ? (obj["pairs"] as unknown[]).filter((p) => typeof p === "string") : [];
      const recovered = obj["recovered"];
      const ack: AckMessage = { type: obj["type"], pairs: pairs as string[], id: obj["id"] ?? null };
      return typeof recovered === "boolean" ? { ...ack, recovered } : ack;
    }
    case "pong":
      return { type: "pong", id: obj["id"] ?? null };
    case "error":
      return {
        type: "error",
        code: typeof obj["code"] === "string" ? obj["code"] : "",
        message: typeof obj["message"] === "string" ? obj["message"] : "",
        id: obj["id"] ?? null,
      };
    default:
      return { type: "unknown", raw: obj };
  }
}

/**
 * One gateway frame as its messages, in order. Throws DecodeError for anything else (not
 * JSON, not objects, a known type with fields missing or of the wrong kind): the whole frame
 * is then refused, as the reference client does.
 */
export function decodeFrame(text: string): ServerMessage[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    fail("not JSON");
  }
  return Array.isArray(parsed) ? parsed.map(messageFromObject) : [messageFromObject(parsed)];
}

/** A client op as the JSON text sent on the connection (one op per frame). */
export function encodeOp(op: ClientOp): string {
  if (op.op === "subscribe" && op.since !== undefined && Object.keys(op.since).length === 0) {
    const { since: _unused, ...rest } = op;
    return JSON.stringify(rest);
  }
  return JSON.stringify(op);
}
