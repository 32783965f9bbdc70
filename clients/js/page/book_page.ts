/**
 * The gateway's `/book` page: a live depth ladder of one pair, kept by `@bookcast/client`.
 *
 * Served by the gateway (gateway/book_page.py) with gateway/book_page.html; esbuild bundles
 * this file and the client into gateway/book_page.js (`npm run build`). The page loads nothing
 * else: it connects to the gateway that served it (`/ws`, with the page's `?token=` if any),
 * follows `/book/<PAIR>` (or `?pair=`, or the first pair of `GET /pairs`) and redraws at most
 * once per animation frame.
 *
 * What a person must see is shown loudly: a resync (the ladder dims, the banner says why) and a
 * lost connection (RECONNECTING, the close code, the retry). `window.bookPage` exposes the
 * client for the console and the browser test.
 */

import { BookClient, type BookUpdate, type ConnectionEvent, formatUnits, type Level, toUnits } from "../src/index.js";

const DEFAULT_DEPTH = 25;
const RATE_WINDOW_MS = 5000;

type State = "connecting" | "live" | "resyncing" | "reconnecting" | "busy" | "refused" | "unknown_pair";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`#${id} missing from the page`);
  return el as T;
};

function choosePair(offered: string[]): string {
  const fromPath = decodeURIComponent(location.pathname.replace(/^\/book\/?/, "")).trim();
  const fromQuery = new URLSearchParams(location.search).get("pair") ?? "";
  const wanted = fromPath || fromQuery;
  if (wanted) return wanted.toUpperCase();
  return offered.includes("BTC-USD") ? "BTC-USD" : (offered[0] ?? "BTC-USD");
}

function wsUrl(): string {
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const token = new URLSearchParams(location.search).get("token");
  if (token) url.searchParams.set("token", token);
  return url.href;
}

async function offeredPairs(): Promise<string[]> {
  try {
    const response = await fetch("/pairs", { cache: "no-store" });
    if (!response.ok) return [];
    const body = (await response.json()) as { pairs?: unknown };
    return Array.isArray(body.pairs) ? body.pairs.filter((p): p is string => typeof p === "string") : [];
  } catch {
    return [];
  }
}

function time(ms: number): string {
  const d = new Date(ms);
  return `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

function fmtMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return "–";
  return ms < 10 ? ms.toFixed(1) : ms.toFixed(0);
}

class Page {
  private readonly client: BookClient;
  private state: State = "connecting";
  private why = "";
  private dirty = false;
  private renders = 0;
  private readonly updates: number[] = []; // receipt times (ms) of the last RATE_WINDOW_MS
  private lastUpdate: BookUpdate | null = null;
  private readonly depth: number;
  private retryAt: number | null = null;

  constructor(
    readonly pair: string,
    offered: string[],
  ) {
    const depth = Number(new URLSearchParams(location.search).get("depth") ?? DEFAULT_DEPTH);
    this.depth = Number.isInteger(depth) && depth >= 1 && depth <= 200 ? depth : DEFAULT_DEPTH;
    document.title = `${pair} · bookcast`;
    $("pair-name").textContent = pair;
    const select = $<HTMLSelectElement>("pair");
    for (const p of offered.length > 0 ? offered : [pair]) select.add(new Option(p, p, false, p === pair));
    select.addEventListener("change", () => {
      location.href = `/book/${encodeURIComponent(select.value)}${location.search}`;
    });
    this.client = new BookClient(wsUrl(), [pair], {
      failFast: false,
      log: (level, message) => {
        if (level !== "info") this.event(level === "error" ? "bad" : "warn", message);
      },
    });
    this.client.on("update", (u) => this.onUpdate(u));
    this.client.on("sync", (s) => {
      if (s.synced) {
        this.event("ok", `synced at seq ${this.client.book(pair).seq}`);
      } else if (s.reason === "refused") {
        const refusal = this.client.book(pair).refusal;
        this.event("bad", `the gateway refused ${pair}: ${refusal?.code ?? "?"}: ${refusal?.message ?? ""}`);
      } else {
        this.event("warn", `resync: ${reasonText(s.reason)} after seq ${this.client.book(pair).seq}`);
        this.why = reasonText(s.reason);
      }
      this.touch();
    });
    this.client.on("connection", (e) => this.onConnection(e));
    this.client.on("gatewayError", (e) => this.event("warn", `gateway error ${e.code}: ${e.message}`));
    if (!offered.includes(pair) && offered.length > 0) {
      this.event("bad", `${pair} is not offered by this gateway (GET /pairs)`);
    }
    setInterval(() => this.touch(), 500); // the rate decays and the clocks move even when nothing arrives
  }

  start(): void {
    this.event("info", `connecting to ${this.client.url}`);
    void this.client.start();
    this.touch();
  }

  private onUpdate(u: BookUpdate): void {
    this.updates.push(u.receivedMs);
    this.lastUpdate = u;
    if (u.kind === "snapshot") this.event("info", `snapshot at seq ${u.seq} (epoch ${u.epoch})`);
    this.touch();
  }

  private onConnection(e: ConnectionEvent): void {
    switch (e.type) {
      case "open":
        this.retryAt = null;
        this.event("ok", `connected to ${e.url}`);
        break;
      case "closed":
        this.event("warn", `connection closed: ${e.code}${e.reason ? ` ${e.reason}` : ""}; reconnecting`);
        this.why = `closed ${e.code}${e.reason ? ` (${e.reason})` : ""}`;
        break;
      case "failed":
        this.why = e.refusal ? `gateway busy (HTTP ${e.refusal.status})` : "cannot connect";
        break;
      case "waiting":
        this.retryAt = Date.now() + e.delayMs;
        break;
      default:
        break;
    }
    this.touch();
  }

  private event(kind: "ok" | "info" | "warn" | "bad", text: string): void {
    const list = $("events");
    const item = document.createElement("li");
    item.className = kind;
    item.innerHTML = `<time></time> <span></span>`;
    (item.firstChild as HTMLElement).textContent = time(Date.now());
    (item.lastChild as HTMLElement).textContent = text;
    list.prepend(item);
    while (list.childElementCount > 60) list.lastElementChild?.remove();
  }

  private touch(): void {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => this.render());
  }

  private currentState(): State {
    const view = this.client.book(this.pair);
    if (view.refusal !== null) return view.refusal.code === "unknown_pair" ? "unknown_pair" : "refused";
    const connection = this.client.connectionState;
    if (connection !== "open") {
      if (this.client.lastRefusal !== null) return "busy";
      return this.client.stats.connects === 0 ? "connecting" : "reconnecting";
    }
    if (!view.synced) return this.client.stats.snapshots === 0 ? "connecting" : "resyncing";
    return "live";
  }

  render(): void {
    this.dirty = false;
    this.renders += 1;
    const client = this.client;
    const view = client.book(this.pair);
    const stats = client.stats;
    const now = Date.now();
    while (this.updates.length > 0 && (this.updates[0] as number) < now - RATE_WINDOW_MS) this.updates.shift();

    const state = this.currentState();
    if (state !== this.state) this.state = state;
    const pill = $("state");
    const labels: Record<State, string> = {
      connecting: "CONNECTING",
      live: "LIVE",
      resyncing: "RESYNCING",
      reconnecting: "RECONNECTING",
      busy: "GATEWAY BUSY",
      refused: "REFUSED",
      unknown_pair: "NOT OFFERED",
    };
    pill.textContent = labels[state];
    pill.className = `pill ${state === "live" ? "ok" : state === "refused" || state === "unknown_pair" ? "bad" : "warn"}`;
    const banner = $("banner");
    if (state === "live") {
      banner.hidden = true;
    } else {
      banner.hidden = false;
      const retry = this.retryAt !== null && this.retryAt > now ? `; next attempt in ${((this.retryAt - now) / 1000).toFixed(1)} s` : "";
      const text: Record<State, string> = {
        connecting: "connecting…",
        live: "",
        resyncing: `resyncing: ${this.why || "waiting for a snapshot"} — the book below is not trusted until the snapshot arrives`,
        reconnecting: `reconnecting: ${this.why || "connection lost"}${retry} — the book below may be behind`,
        busy: `the gateway is busy (HTTP ${client.lastRefusal?.status ?? "?"}, Retry-After ${client.lastRefusal?.retryAfter ?? "–"} s)${retry}`,
        refused: `refused: ${view.refusal?.code ?? ""} ${view.refusal?.message ?? ""}`,
        unknown_pair: `${this.pair} is not offered by this gateway`,
      };
      banner.textContent = text[state];
      banner.className = state === "refused" || state === "unknown_pair" ? "bad" : "warn";
    }
    document.body.dataset["state"] = state;
    document.body.dataset["renders"] = String(this.renders);

    const ladder = $("ladder");
    ladder.classList.toggle("stale", state !== "live");
    if (view.synced) this.renderBook(view.top(this.depth), view.spread(), view.decimals);

    $("seq").textContent = view.synced ? String(view.seq) : $("seq").textContent || "–";
    $("epoch").textContent = view.epoch ?? ($("epoch").textContent || "–");
    $("rate").textContent = this.updates.length > 1 ? (this.updates.length / (RATE_WINDOW_MS / 1000)).toFixed(1) : "0";
    $("latency").textContent = fmtMs(stats.lastExchangeLatencyMs);
    $("latency-p99").textContent = fmtMs(stats.exchangeLatencyPercentile(99));
    $("window-latency").textContent = fmtMs(stats.lastWindowLatencyMs);
    for (const [id, value] of [
      ["c-gaps", stats.gaps],
      ["c-resyncs", stats.resyncs],
      ["c-checksum", stats.checksumFailures],
      ["c-reconnects", stats.reconnects],
      ["c-recoveries", stats.recoveries],
      ["c-snapshots", stats.snapshots],
      ["c-deltas", stats.deltas],
      ["c-stale", stats.staleDeltas],
    ] as const) {
      const el = $(id);
      const text = String(value);
      if (el.textContent !== text) {
        el.textContent = text;
        el.parentElement?.classList.toggle("hot", value > 0 && id !== "c-snapshots" && id !== "c-deltas");
      }
    }
    const last = this.lastUpdate;
    $("updated").textContent = last === null ? "waiting for the book…" : `last update ${time(last.receivedMs)} (${last.kind} ${last.seq})`;
  }

  private renderBook(top: { bids: Level[]; asks: Level[] }, spread: string | null, decimals: { price: number; qty: number }): void {
    const view = this.client.book(this.pair);
    const cumulate = (levels: Level[]): bigint[] => {
      let sum = 0n;
      return levels.map((l) => (sum += toUnits(l.qty, decimals.qty)));
    };
    const bidCum = cumulate(top.bids);
    const askCum = cumulate(top.asks);
    const max = Number([...bidCum, ...askCum].reduce((a, b) => (b > a ? b : a), 1n));
    const row = (side: "bid" | "ask", level: Level, cum: bigint): string => {
      const width = Math.max(0.5, (Number(cum) / max) * 100).toFixed(2);
      const c = formatUnits(cum, decimals.qty);
      return (
        `<tr class="${side}" data-price="${level.price}" data-qty="${level.qty}">` +
        `<td class="bar"><i style="width:${width}%"></i></td>` +
        `<td class="price">${level.price}</td><td class="qty">${level.qty}</td><td class="cum">${c}</td></tr>`
      );
    };
    const asks: string[] = [];
    for (let i = top.asks.length - 1; i >= 0; i--) asks.push(row("ask", top.asks[i] as Level, askCum[i] as bigint));
    const bids = top.bids.map((l, i) => row("bid", l, bidCum[i] as bigint));
    const mid = `<tr class="spread"><td></td><td colspan="3">spread <b id="spread">${spread ?? "–"}</b></td></tr>`;
    const body = $("ladder-body");
    body.innerHTML = asks.join("") + mid + bids.join("");
    body.dataset["seq"] = String(view.seq);
    body.dataset["epoch"] = view.epoch ?? "";
    document.body.dataset["seq"] = String(view.seq);
    document.body.dataset["epoch"] = view.epoch ?? "";
    const bestBid = top.bids[0];
    const bestAsk = top.asks[0];
    $("best-bid").textContent = bestBid ? bestBid.price : "–";
    $("best-bid-qty").textContent = bestBid ? bestBid.qty : "";
    $("best-ask").textContent = bestAsk ? bestAsk.price : "–";
    $("best-ask-qty").textContent = bestAsk ? bestAsk.qty : "";
    $("spread-tile").textContent = spread ?? "–";
    const depth = view.depth();
    $("depth").textContent = `${depth.bids} bids · ${depth.asks} asks`;
  }

  /** What the ladder shows now, read back from the page (for the browser test and the console). */
  shown(): { seq: number; epoch: string; bids: [string, string][]; asks: [string, string][] } {
    const body = $("ladder-body");
    const pick = (side: string): [string, string][] =>
      [...body.querySelectorAll<HTMLElement>(`tr.${side}`)].map((tr) => [tr.dataset["price"] ?? "", tr.dataset["qty"] ?? ""]);
    return { seq: Number(body.dataset["seq"]), epoch: body.dataset["epoch"] ?? "", bids: pick("bid"), asks: pick("ask").reverse() };
  }

  get bookClient(): BookClient {
    return this.client;
  }
}

function reasonText(reason: string | undefined): string {
  switch (reason) {
    case "gap":
      return "a seq gap";
    case "epoch":
      return "a new epoch";
    case "checksum":
      return "a checksum mismatch";
    case "bad_message":
      return "a message that could not be applied";
    default:
      return reason ?? "unknown";
  }
}

declare global {
  interface Window {
    bookPage?: { pair: string; client: BookClient; shown: () => ReturnType<Page["shown"]> };
  }
}

async function main(): Promise<void> {
  const offered = await offeredPairs();
  const page = new Page(choosePair(offered), offered);
  window.bookPage = { pair: page.pair, client: page.bookClient, shown: () => page.shown() };
  page.start();
}

void main();
