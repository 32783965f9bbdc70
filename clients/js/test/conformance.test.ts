/**
 * The conformance kit (tests/conformance/ at the repository's root) played against this client
 * over real WebSockets: the same case files the Python BookClient plays. Each step is checked
 * as tests/conformance/README.md says; BOOKCAST_CONFORMANCE_CASES points at another folder of
 * cases.
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { BookClient } from "../src/client.js";
import { checksumOfLevels, CHECKSUM_DEPTH } from "../src/checksum.js";
import { FAST, type Op, ScriptedServer, type ScriptedConnection, T } from "./scripted-server.js";

const here = dirname(fileURLToPath(import.meta.url)); // build/test
const CASES = process.env["BOOKCAST_CONFORMANCE_CASES"] ?? resolve(here, "../../../../tests/conformance/cases");

type Json = Record<string, unknown>;
interface Step extends Json {
  kind: string;
  note?: string;
}

const COUNTERS = [
  "snapshots", "deltas", "stale_deltas", "ignored_deltas", "gaps", "checksum_failures", "resyncs",
  "reconnects", "recoveries", "subscribe_refusals", "errors", "bad_frames",
] as const;
const camel = (name: string): string => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function counters(client: BookClient): Record<string, number> {
  const stats = client.stats as unknown as Record<string, number>;
  return Object.fromEntries(COUNTERS.map((name) => [name, stats[camel(name)] as number]));
}

function held(client: BookClient, pair: string): Json {
  const view = client.book(pair);
  if (!view.synced) return { synced: false, refused: view.refusal?.code ?? null };
  const every = view.top(Infinity);
  const bids = every.bids.map((l): [string, string] => [l.price, l.qty]);
  const asks = every.asks.map((l): [string, string] => [l.price, l.qty]);
  return {
    synced: true, epoch: view.epoch, seq: view.seq, checksum: checksumOfLevels(bids, asks),
    bids: bids.slice(0, CHECKSUM_DEPTH), asks: asks.slice(0, CHECKSUM_DEPTH), depth: [bids.length, asks.length],
  };
}

/** null if `op` matches the step's pattern (see tests/conformance/kit.py `op_matches`), else why not. */
function mismatch(pattern: Json, op: Op): string | null {
  const shown = JSON.stringify(op);
  if (op.op !== pattern["op"]) return `expected a ${String(pattern["op"])}, the client sent ${shown}`;
  if ("pair" in pattern && op["pair"] !== pattern["pair"]) return `expected pair ${String(pattern["pair"])}, the client sent ${shown}`;
  if ("pairs" in pattern) {
    const want = [...(pattern["pairs"] as string[])].sort();
    const got = [...((op["pairs"] as string[] | undefined) ?? [])].sort();
    if (JSON.stringify(want) !== JSON.stringify(got)) return `expected pairs ${JSON.stringify(want)}, the client sent ${shown}`;
  }
  if ("since" in pattern) {
    try {
      assert.deepEqual(op["since"] ?? {}, pattern["since"] ?? {});
    } catch {
      return `expected since ${JSON.stringify(pattern["since"])}, the client sent ${shown}`;
    }
  }
  return null;
}

function substitute(frame: string, ids: Map<string, unknown>): string {
  let out = frame;
  for (const [name, value] of ids) out = out.split(JSON.stringify(`$id:${name}`)).join(JSON.stringify(value));
  return out;
}

async function runCase(file: string): Promise<void> {
  const lines = readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Step);
  const header = lines[0] as Json;
  assert.equal(header["kind"], "case");
  assert.equal(header["format"], 1);
  const servers = await Promise.all(Array.from({ length: Number(header["urls"] ?? 1) }, () => ScriptedServer.start()));
  const client = new BookClient(servers.map((s) => s.url), header["pairs"] as string[], FAST);
  const ids = new Map<string, unknown>();
  let conn: ScriptedConnection | null = null;
  try {
    await client.start();
    for (let i = 1; i < lines.length; i++) {
      const step = lines[i] as Step;
      const where = `${String(header["name"])} line ${i + 1} (${step.kind}${step.note === undefined ? "" : `: ${step.note}`})`;
      if (step.kind === "accept") {
        conn = await servers[step["url"] as number]!.accept(T).catch(() => {
          throw new assert.AssertionError({ message: `${where}: the client did not connect to URL ${String(step["url"])}` });
        });
        continue;
      }
      assert.ok(conn !== null, `${where}: no connection yet`);
      switch (step.kind) {
        case "client_sends": {
          const op: Op = await conn.ops.next(T, `${where}: the client's op`);
          const problem = mismatch(step["op"] as Json, op);
          assert.equal(problem, null, `${where}: ${problem}`);
          if (typeof step["as"] === "string") ids.set(step["as"], op["id"]);
          break;
        }
        case "server_sends": {
          const before = client.stats.frames;
          conn.send(substitute(step["frame"] as string, ids));
          await client.waitFor(() => client.stats.frames > before, T);
          break;
        }
        case "expect": {
          for (const [pair, want] of Object.entries((step["books"] ?? {}) as Record<string, Json>)) {
            const got = held(client, pair);
            for (const [key, value] of Object.entries(want)) {
              assert.deepEqual(got[key], value, `${where}: ${pair}: ${key} is ${JSON.stringify(got[key])}, expected ${JSON.stringify(value)}`);
            }
          }
          const got = counters(client);
          for (const [name, value] of Object.entries((step["counters"] ?? {}) as Record<string, number>)) {
            assert.equal(got[name], value, `${where}: counter ${name} is ${got[name]}, expected ${value} (all: ${JSON.stringify(got)})`);
          }
          break;
        }
        case "server_closes":
        case "server_drops": {
          const before = client.stats.disconnects;
          if (step.kind === "server_closes") conn.close(step["code"] as number, step["reason"] as string);
          else conn.drop();
          await client.waitFor(() => client.stats.disconnects > before, T);
          break;
        }
        case "client_subscribes":
          client.subscribe(step["pairs"] as string[]);
          break;
        case "expect_quiet": {
          const pinging = client.ping(T);
          const op: Op = await conn.ops.next(T, `${where}: the ping`);
          assert.equal(op.op, "ping", `${where}: the client sent ${JSON.stringify(op)} where nothing was due`);
          conn.send(JSON.stringify({ type: "pong", id: op["id"] }));
          await pinging;
          break;
        }
        default:
          assert.fail(`${where}: unknown step kind ${step.kind}`);
      }
    }
  } finally {
    await client.close();
    await Promise.all(servers.map((s) => s.stop()));
  }
}

const files = readdirSync(CASES).filter((f) => f.endsWith(".jsonl")).sort();

test("the kit has cases", () => {
  assert.ok(files.length >= 14, `only ${files.length} cases in ${CASES}`);
});

for (const file of files) {
  test(`conformance: ${file.replace(/\.jsonl$/, "")}`, async () => {
    await runCase(join(CASES, file));
  });
}
