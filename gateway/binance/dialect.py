"""The Binance dialect on a websockets server: routing, connections and fan-out around the pure core.

Everything that decides lives in the pure modules (``streams``, ``session``, ``rest``,
``feed``); this one only moves bytes. It needs from the gateway a :class:`HubPort` — the
pairs on offer, replicas kept alive while wanted, their books — and is told about every
applied delta and every book reset of a wanted pair through :meth:`BinanceDialect.on_delta`
and :meth:`BinanceDialect.on_reset`. Every event is encoded once per pair (and once more
per stream name for combined connections) and written with ``websockets.broadcast``, never
awaiting a client. A connection that cannot keep up gets the native slow-client policy
(``gateway.binance.slow``): no events while over the high-water mark (its client sees a jump
in update ids and refetches a REST snapshot), its partial books at once when it drains, and
close 4008 if it stays stale.
"""

from __future__ import annotations

import asyncio
import http
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gateway.binance.config import BinanceConfig
from gateway.binance.events import wrap_combined
from gateway.binance.feed import PairFeed
from gateway.binance.rest import BinanceRest, BinanceRestError, DepthQuery, RestAnswer
from gateway.binance.session import StreamSession
from gateway.binance.slow import SlowClients, StreamConn
from gateway.binance.streams import StreamPathError, StreamSpec, parse_stream_name, parse_stream_target
from gateway.binance.symbols import SymbolInfo, SymbolTable
from gateway.binance.update_ids import UpdateIds
from mdcore.local_book import LocalBook
from mdcore.messages import Delta

log = logging.getLogger(__name__)

TICK_S = 0.1  # partial books at 100 ms; the 1000 ms streams every tenth tick
FeedKey = tuple[str, int, int]  # (pair, levels, speed ms): StreamSpec.feed


class BookUnavailableError(Exception):
    """Raised by :meth:`HubPort.load_book` when the book cannot be read now (Redis down)."""


class HubPort(Protocol):
    """What the dialect needs from the gateway's hub."""

    async def offered_pairs(self) -> set[str]:
        """Pairs this gateway offers (bookcast names)."""
        ...

    async def want(self, pair: str) -> None:
        """Keep a replica of ``pair`` and report its deltas and resets to the dialect."""
        ...

    def unwant(self, pair: str) -> None:
        """The dialect no longer needs ``pair`` (the hub may drop it after its linger)."""
        ...

    def live_book(self, pair: str) -> LocalBook | None:
        """The replica's verified book if it is live, else None."""
        ...

    async def load_book(self, pair: str) -> LocalBook | None:
        """The book from Redis (None: no stream yet); raises BookUnavailableError if unreadable."""
        ...


def _http(answer: RestAnswer) -> Response:
    return Response(
        answer.status, http.HTTPStatus(answer.status).phrase, Headers(answer.headers), answer.body
    )


class BinanceDialect:
    """Binance Spot market data (REST + streams) for one gateway process."""

    def __init__(
        self,
        hub: HubPort,
        cfg: BinanceConfig | None = None,
        *,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.cfg = cfg or BinanceConfig()
        self.rest = BinanceRest(self.cfg.weight_limit, wall_ms)
        self.counters: Counter[str] = Counter()
        self.connections: set[StreamConn] = set()
        cfg = self.cfg
        self.slow = SlowClients(
            cfg.high_water_bytes, cfg.low_water_bytes, cfg.slow_close_s, monotonic, self.counters
        )
        self._wall_ms = wall_ms
        self._monotonic = monotonic
        self._table = SymbolTable(())
        self._ids: dict[str, UpdateIds] = {}
        self._feeds: dict[str, PairFeed] = {}
        self._routes: dict[FeedKey, dict[str, set[StreamConn]]] = {}
        self._pair_keys: dict[str, set[FeedKey]] = {}
        self._pair_refs: Counter[str] = Counter()
        self._changed: set[str] = set()  # pairs whose book moved since the last tick
        self._second = -1

    # --- routing -------------------------------------------------------------------------

    def matches(self, path: str) -> bool:
        """True if a request path (query allowed) belongs to this dialect."""
        rel = self._relative(urlsplit(path).path)
        return rel is not None and (rel.startswith(("/api/", "/ws", "/stream")))

    def _relative(self, path: str) -> str | None:
        prefix = self.cfg.prefix
        if not path.startswith(prefix) or (len(path) > len(prefix) and path[len(prefix)] != "/"):
            return None
        return path[len(prefix) :]

    async def symbol_table(self) -> SymbolTable:
        offered = frozenset(await self.hub.offered_pairs())
        if offered != self._table.pairs:
            self._table = SymbolTable(offered)
        return self._table

    def ids(self, pair: str) -> UpdateIds:
        """The pair's update-id mapping, shared by REST snapshots and stream events."""
        ids = self._ids.get(pair)
        if ids is None:
            ids = self._ids[pair] = UpdateIds(self._wall_ms)
        return ids

    # --- HTTP: REST answers and the stream handshake -------------------------------------

    async def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """websockets' ``process_request`` for a path that :meth:`matches`: REST is answered here,
        a valid stream URL goes on to the WebSocket handshake (None)."""
        url = urlsplit(request.path)
        rel = self._relative(url.path) or ""
        table = await self.symbol_table()
        if rel.startswith("/api/"):
            self.counters["rest_requests"] += 1
            ip = str(conn.remote_address[0]) if conn.remote_address else "?"
            answer = self.rest.handle(rel, url.query, ip, table)
            if isinstance(answer, DepthQuery):
                answer = await self._depth(answer)
            return _http(answer)
        used = 0
        try:
            target = parse_stream_target(rel, url.query, table, self.cfg.max_streams)
        except StreamPathError as exc:
            return _http(self.rest.error(BinanceRestError(exc.code, exc.msg), used))
        if target is None:
            return _http(
                self.rest.error(BinanceRestError(-1020, "This operation is not supported.", 404), used)
            )
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _http(self.rest.error(BinanceRestError(-1020, "This is a WebSocket endpoint.", 426), used))
        # Binance's keepalive, and room for a SUBSCRIBE naming many streams (per connection).
        conn.ping_interval, conn.ping_timeout = self.cfg.ping_interval_s, self.cfg.ping_timeout_s
        conn.protocol.max_message_size = self.cfg.max_message_bytes  # websockets reads it per frame
        return None

    def error_response(self, exc: BinanceRestError) -> Response:
        """A Binance error answer (HTTP status, ``{"code","msg"}``, weight headers) for the gate."""
        return _http(self.rest.error(exc, 0))

    async def _depth(self, query: DepthQuery) -> RestAnswer:
        pair = query.info.pair
        local = self.hub.live_book(pair)
        if local is None:
            try:
                local = await self.hub.load_book(pair)
            except BookUnavailableError:
                return self.rest.unavailable(query)
        if local is None or local.epoch is None:
            return self.rest.depth(query, None, 0)
        return self.rest.depth(query, local, self.ids(pair).update_id(local.epoch, local.seq))

    # --- WebSocket connections -----------------------------------------------------------

    async def serve(self, ws: ServerConnection) -> None:
        """The connection handler for a stream URL accepted by :meth:`process_request`."""
        url = urlsplit(ws.request.path if ws.request is not None else "")
        table = await self.symbol_table()
        try:
            target = parse_stream_target(
                self._relative(url.path) or "", url.query, table, self.cfg.max_streams
            )
        except StreamPathError as exc:  # the offer changed since the handshake
            await ws.close(1008, exc.msg[:120])
            return
        if target is None:
            await ws.close(1008, "not a stream URL")
            return
        session = StreamSession(
            target.combined,
            target.streams,
            lambda name: parse_stream_name(name, self._table),
            max_streams=self.cfg.max_streams,
            rate=self.cfg.msg_rate,
            now=self._monotonic(),
        )
        conn = StreamConn(ws, session)
        self.connections.add(conn)
        self.counters["connections_opened"] += 1
        try:
            await self._route(conn, target.streams)
            async for message in ws:
                await self.symbol_table()  # names resolve against the current offer
                outcome = session.receive(message, self._monotonic())
                if outcome.close is not None:
                    self.counters["closed_over_rate"] += 1
                    conn.close_now(*outcome.close)
                    break
                if outcome.reply is not None:
                    self.slow.reply(conn, outcome.reply)  # before the new streams' first event
                self._unroute(conn, outcome.removed)
                await self._route(conn, outcome.added)
        except ConnectionClosed:
            pass
        finally:
            self.connections.discard(conn)
            self.slow.forget(conn)
            self._unroute(conn, tuple(conn.routed.values()))

    async def close_all(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Close every Binance stream connection (the gateway's graceful shutdown), waiting for no one."""
        conns = list(self.connections)
        for conn in conns:
            conn.close_now(code, reason)
        if conns:
            await asyncio.gather(*(conn.ws.wait_closed() for conn in conns), return_exceptions=True)

    async def _route(self, conn: StreamConn, specs: tuple[StreamSpec, ...]) -> None:
        for spec in specs:
            self._routes.setdefault(spec.feed, {}).setdefault(spec.name, set()).add(conn)
            self._pair_keys.setdefault(spec.pair, set()).add(spec.feed)
            conn.routed[spec.name] = spec
            self._pair_refs[spec.pair] += 1
            if spec.pair not in self._feeds:
                info = self._table.by_pair(spec.pair) or SymbolInfo.of(spec.pair)
                self._feeds[spec.pair] = PairFeed(info, self.ids(spec.pair))
                await self.hub.want(spec.pair)

    def _unroute(self, conn: StreamConn, specs: tuple[StreamSpec, ...]) -> None:
        for spec in specs:
            if conn.routed.pop(spec.name, None) is None:
                continue
            names = self._routes.get(spec.feed, {})
            subscribers = names.get(spec.name)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del names[spec.name]
            if not names:
                self._routes.pop(spec.feed, None)
                keys = self._pair_keys.get(spec.pair)
                if keys is not None:
                    keys.discard(spec.feed)
            self._pair_refs[spec.pair] -= 1
            if self._pair_refs[spec.pair] <= 0:
                del self._pair_refs[spec.pair]
                self._pair_keys.pop(spec.pair, None)
                self._feeds.pop(spec.pair, None)
                self.hub.unwant(spec.pair)

    def _emit(self, key: FeedKey, payload: bytes) -> None:
        names = self._routes.get(key)
        if not names:
            return
        slow = self.slow
        for name, conns in names.items():
            raw, combined = [], []
            for conn in conns:
                if not slow.takes_events(conn):
                    self.counters["events_skipped_lagging"] += 1  # the client will see the jump
                    continue
                (combined if conn.session.combined else raw).append(conn.ws)
            if raw:
                broadcast(raw, payload, text=True)
            if combined:
                broadcast(combined, wrap_combined(name.encode(), payload), text=True)
            self.counters["frames_out"] += len(raw) + len(combined)

    # --- the stream of each wanted pair (called by the hub) ------------------------------

    def on_delta(self, pair: str, delta: Delta) -> None:
        """The replica of ``pair`` applied ``delta`` (in order, gap-free, verified)."""
        feed = self._feeds.get(pair)
        if feed is None:
            return
        events = feed.on_delta(delta)
        if events.slow is not None:
            self._emit((pair, 0, 1000), events.slow)
        self._emit((pair, 0, 100), events.fast)
        self._changed.add(pair)

    def on_reset(self, pair: str, local: LocalBook) -> None:
        """The replica of ``pair`` replaced its book (reload or new epoch)."""
        feed = self._feeds.get(pair)
        if feed is None:
            return
        slow = feed.on_reset(local)
        if slow is not None:
            self._emit((pair, 0, 1000), slow)
        self._changed.add(pair)

    def tick(self, now_ms: int) -> None:
        """Every 100 ms: changed partial books at 100 ms; each new second, 1000 ms streams."""
        second = now_ms // 1000
        new_second = second != self._second
        self._second = second
        for conn in self.slow.sweep(self.connections if new_second else ()):
            self._send_partials(conn)
        changed, self._changed = self._changed, set()
        for pair, feed in self._feeds.items():
            if new_second and (slow := feed.flush_slow()) is not None:
                self._emit((pair, 0, 1000), slow)
            due = [
                key
                for key in self._pair_keys.get(pair, ())
                if key[1] and (new_second if key[2] == 1000 else pair in changed)
            ]
            local = self.hub.live_book(pair) if due else None
            if local is None or local.epoch is None:
                continue
            for key in due:
                self._emit(key, feed.partial(local, key[1])[1])

    def _send_partials(self, conn: StreamConn) -> None:
        """A healed connection's partial books, now: what it missed while stale, in full."""
        for spec in list(conn.routed.values()):
            feed = self._feeds.get(spec.pair)
            local = self.hub.live_book(spec.pair) if spec.levels and feed is not None else None
            if feed is None or local is None or local.epoch is None:
                continue
            payload = feed.partial(local, spec.levels)[1]
            if conn.session.combined:
                payload = wrap_combined(spec.name.encode(), payload)
            broadcast((conn.ws,), payload, text=True)
            self.counters["slow_partials_sent"] += 1

    async def run(self) -> None:
        """Drive :meth:`tick` every 100 ms, aligned to wall-clock tenths, until cancelled."""
        while True:
            await asyncio.sleep(TICK_S - (self._wall_ms() % 100) / 1000)
            try:
                self.tick(self._wall_ms())
            except Exception:  # one bad tick must not end the 1000 ms streams for good
                log.exception("binance tick failed")
