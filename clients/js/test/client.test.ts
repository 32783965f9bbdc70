/** BookClient over a real WebSocket: sync, resync, reconnect with since, 503 + Retry-After, pacing, keepalive. */

import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";

import { BookClient, ClientConnectError, type ConnectionEvent } from "../src/index.js";
import { Source } from "./helpers.js";
import { FAST, ScriptedServer, type ScriptedConnection, T } from "./scripted-server.js";

let server: ScriptedServer;
before(async () => {
  server = await ScriptedServer.start();
});
after(async () => {
  await server.stop();
});
const clients: BookClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});
function track(client: BookClient): BookClient {
  clients.push(client);
  return client;
}

async function synced(pairs: Source[], options = {}): Promise<{ client: BookClient; conn: ScriptedConnection }> {
  const client = track(new BookClient(server.url, pairs.map((s) => s.pair), { ...FAST, ...options }));
  await client.start();
  const conn = await server.accept();
  const op = await conn.expect("subscribe");
  assert.deepEqual(op["pairs"], pairs.map((s) => s.pair));
  assert.equal(op["since"], undefined);
  conn.send({ type: "subscribed", pairs: op["pairs"], id: op["id"] }, ...pairs.map((s) => s.snapshot()));
  await client.waitSynced(undefined, T);
  return { client, conn };
}

test("snapshot then deltas, packed frames, update events, exact book", async () => {
  const btc = new Source("BTC-USD");
  const eth = new Source("ETH-USD", "x9", 40, 5);
  const { client, conn } = await synced([btc, eth]);
  const seen: string[] = [];
  client.on("update", (u) => seen.push(`${u.pair}:${u.kind}:${u.seq}`));
  conn.send(btc.bump(), eth.bump()); // one array frame, two pairs
  conn.send(btc.delta([["99.95", "1.25"]], [["100.10", "0"]])); // non-canonical strings, "0" deletes
  await client.waitFor(() => client.book("BTC-USD").seq === btc.seq, T);
  assert.deepEqual(seen, [`BTC-USD:delta:${btc.seq - 1}`, `ETH-USD:delta:${eth.seq}`, `BTC-USD:delta:${btc.seq}`]);
  const view = client.book("BTC-USD");
  assert.deepEqual(view.top(Infinity).bids.map((l) => [l.price, l.qty]), btc.side("bids"));
  assert.deepEqual(view.top(Infinity).asks.map((l) => [l.price, l.qty]), btc.side("asks"));
  assert.deepEqual(view.bestBid(), { price: "99.95", qty: "1.25000" });
  assert.deepEqual(view.bestAsk(), { price: "100.20", qty: "3.00000" });
  assert.equal(view.spread(), "0.25"); // 100.20 - 99.95, once 100.10 was deleted
  assert.equal(client.stats.deltas, 3);
  assert.equal(client.stats.gaps + client.stats.checksumFailures + client.stats.badFrames, 0);
  await client.close();
});

test("a gap resyncs: one resync op, deltas ignored until the snapshot, then continued", async () => {
  const btc = new Source();
  const { client, conn } = await synced([btc]);
  const syncs: string[] = [];
  client.on("sync", (s) => syncs.push(`${s.synced}:${s.reason ?? ""}`));
  btc.bump();
  conn.send(btc.bump()); // seq + 2: a gap
  const resync = await conn.expect("resync");
  assert.equal(resync["pair"], "BTC-USD");
  assert.equal(client.book("BTC-USD").synced, false);
  assert.deepEqual(client.book("BTC-USD").top(), { bids: [], asks: [] }); // never shows a book known to be wrong
  conn.send(btc.snapshot());
  conn.send(btc.bump());
  await client.waitFor(() => client.book("BTC-USD").seq === btc.seq && client.book("BTC-USD").synced, T);
  assert.deepEqual(syncs, ["false:gap", "true:"]);
  assert.equal(client.stats.gaps, 1);
  assert.equal(client.stats.resyncs, 1);
  await client.close();
});

test("1001 moves to the next URL and recovers with since; the replay continues the book", async () => {
  const other = await ScriptedServer.start();
  try {
    const btc = new Source();
    const client = track(new BookClient([server.url, other.url], ["BTC-USD"], FAST));
    await client.start();
    const conn = await server.accept();
    const op = await conn.expect("subscribe");
    conn.send([{ type: "subscribed", pairs: ["BTC-USD"], id: op["id"] }, btc.snapshot()]);
    await client.waitSynced(undefined, T);
    const events: ConnectionEvent["type"][] = [];
    client.on("connection", (e) => events.push(e.type));
    conn.close(1001, "server shutting down");
    const position = btc.seq;
    const missed = [btc.bump(), btc.bump()];
    const conn2 = await other.accept();
    const again = await conn2.expect("subscribe");
    assert.deepEqual(again["since"], { "BTC-USD": { epoch: "e1", seq: position } });
    assert.equal(client.book("BTC-USD").synced, true); // kept while away (protocol.md 7.7)
    conn2.send({ type: "subscribed", pairs: ["BTC-USD"], id: again["id"], recovered: true }, ...missed);
    await client.waitFor(() => client.book("BTC-USD").seq === btc.seq, T);
    assert.equal(client.stats.recoveries, 1);
    assert.equal(client.stats.reconnects, 1);
    assert.equal(client.stats.snapshots, 1);
    assert.ok(events.includes("closed") && events.includes("open"));
    await client.close();
  } finally {
    await other.stop();
  }
});

test("a 503 with Retry-After is waited out before the next attempt (and counted apart)", async () => {
  server.refuse(503, "1");
  const before = server.handshakes.length;
  const client = track(new BookClient(server.url, ["BTC-USD"], { ...FAST, rand: () => 0 }));
  const failed: (ConnectionEvent & { type: "failed" })[] = [];
  client.on("connection", (e) => {
    if (e.type === "failed") failed.push(e);
  });
  await client.start(); // a refusal for load is no configuration error: start() does not throw
  const conn = await server.accept(T);
  await conn.expect("subscribe");
  const [refused, admitted] = server.handshakes.slice(before);
  assert.equal(refused?.status, 503);
  assert.equal(admitted?.status, 101);
  assert.ok(admitted!.at - refused!.at >= 990, `came back after ${admitted!.at - refused!.at} ms`);
  assert.equal(client.stats.handshakeRefusals, 1);
  assert.equal(client.stats.connectFailures, 0);
  assert.deepEqual(failed[0]?.refusal, { status: 503, retryAfter: 1 });
  await client.close();
});

test("a failed first attempt rejects start() with failFast", async () => {
  const gone = await ScriptedServer.start();
  const url = gone.url;
  await gone.stop();
  const client = track(new BookClient(url, ["BTC-USD"], FAST));
  await assert.rejects(client.start(), ClientConnectError);
  assert.equal(client.closed, true);
});

test("ops are paced: a burst of resyncs leaves at the client's op rate", async () => {
  const sources = Array.from({ length: 30 }, (_, i) => new Source(`SYN${String(i).padStart(3, "0")}-USD`));
  const { client, conn } = await synced(sources, { opRate: 10, opBurst: 20 });
  const started = performance.now();
  conn.send(sources.map((s) => ({ ...s.bump(), seq: s.seq + 5 }))); // 30 gaps in one frame
  const arrivals: number[] = [];
  for (let i = 0; i < 30; i++) {
    await conn.expect("resync");
    arrivals.push(performance.now() - started);
  }
  // 19 tokens left after the subscribe, then 10 a second: the 30th leaves ~1.1 s later
  assert.ok(arrivals[29]! >= 1000, `the last resync left after ${arrivals[29]} ms`);
  assert.ok(arrivals[18]! < 500, `the burst took ${arrivals[18]} ms`);
  assert.ok(client.stats.pacedOps >= 1);
  await client.close();
});

test("keepalive: a silent gateway gets a ping, then is dropped and reconnected", async () => {
  const btc = new Source();
  const { client, conn } = await synced([btc], { keepaliveMs: 200 });
  await conn.expect("ping", T); // nothing arrived for 200 ms
  const conn2 = await server.accept(T); // no answer for as long again: a new connection
  const op = await conn2.expect("subscribe");
  assert.deepEqual(op["since"], { "BTC-USD": { epoch: "e1", seq: btc.seq } });
  assert.equal(client.stats.reconnects, 1);
  await client.close();
});

test("ping measures a round trip; pong answers it", async () => {
  const { client, conn } = await synced([new Source()]);
  conn.autoPong = true;
  const rtt = await client.ping(T);
  assert.ok(rtt >= 0 && rtt < T);
  await client.close();
});
