"""A Binance Spot order-book client written from Binance's public documentation alone.

It imports nothing from bookcast (only the standard library, ``websockets`` and ``orjson``),
so it can judge any server that claims to speak Binance: it must work against Binance
itself. It follows "How to manage a local order book correctly" (web-socket-streams.md)
step by step, per symbol:

1. Open a stream: ``/ws/<symbol>@depth@100ms`` (raw), ``/ws`` then ``SUBSCRIBE``, or
   ``/stream?streams=...`` (combined, ``{"stream":..,"data":..}``).
2. Buffer the events received; note the ``U`` of the first one.
3. Get a depth snapshot: ``GET /api/v3/depth?symbol=X&limit=5000``.
4. If the snapshot's ``lastUpdateId`` is below that first ``U``, get it again (step 3).
5. Drop buffered events with ``u <= lastUpdateId``.
6. The first event applied must have ``U <= lastUpdateId + 1 <= u``; every later one must
   have ``U == previous u + 1``. Otherwise: discard the book, start again at step 2.
7. Quantities are absolute; "0" removes the level (removing an absent level is normal).

:class:`DepthBook` is that procedure with no I/O; :class:`ReferenceDepthClient` drives it
over a real connection and REST (urllib, in a thread), reconnecting if the connection drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

MODES = ("raw", "subscribe", "combined")


class DepthBook:
    """One symbol's local book, kept by the documented procedure. Feed it events and snapshots."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.last_update_id: int | None = None  # None: no trusted book (steps 2-5 in progress)
        self.buffer: list[dict[str, Any]] = []
        self._first_pending = False  # the next applied event must straddle lastUpdateId + 1
        self.resyncs = 0  # times the book was discarded because of a gap
        self.snapshots = 0
        self.applied = 0
        self.dropped = 0

    @property
    def synced(self) -> bool:
        return self.last_update_id is not None

    @property
    def first_buffered_u(self) -> int | None:
        """Step 2: the ``U`` of the first event buffered, which a usable snapshot must reach."""
        return self.buffer[0]["U"] if self.buffer else None

    def wants_snapshot(self) -> bool:
        return self.last_update_id is None and bool(self.buffer)

    def on_event(self, event: dict[str, Any]) -> None:
        """A ``depthUpdate`` event for this symbol, in the order received."""
        if self.last_update_id is None:
            self.buffer.append(event)
            return
        self._apply(event)

    def on_snapshot(self, snapshot: dict[str, Any]) -> bool:
        """A REST depth answer. False if it is older than the buffered events (fetch again)."""
        last = snapshot["lastUpdateId"]
        first_u = self.first_buffered_u
        if first_u is not None and last < first_u:
            return False  # step 4
        self.snapshots += 1
        self.bids = {price: qty for price, qty in snapshot["bids"] if not _is_zero(qty)}
        self.asks = {price: qty for price, qty in snapshot["asks"] if not _is_zero(qty)}
        self.last_update_id = last
        self._first_pending = True
        buffered, self.buffer = self.buffer, []
        for event in buffered:
            if self.last_update_id is None:  # a gap inside the buffer restarted the procedure
                self.buffer.append(event)
            else:
                self._apply(event)
        return True

    def _apply(self, event: dict[str, Any]) -> None:
        assert self.last_update_id is not None
        first, final = event["U"], event["u"]
        if final <= self.last_update_id:
            self.dropped += 1  # older than the book: drop it
            return
        if self._first_pending:
            if not first <= self.last_update_id + 1 <= final:
                self._restart(event)
                return
            self._first_pending = False
        elif first != self.last_update_id + 1:
            self._restart(event)
            return
        for price, qty in event["b"]:
            _set(self.bids, price, qty)
        for price, qty in event["a"]:
            _set(self.asks, price, qty)
        self.last_update_id = final
        self.applied += 1

    def _restart(self, event: dict[str, Any]) -> None:
        """Something was missed: discard the book and start again from step 2 with this event."""
        self.resyncs += 1
        self.bids, self.asks = {}, {}
        self.last_update_id = None
        self.buffer = [event]

    def reset(self) -> None:
        """A new connection: nothing from the old one can be trusted."""
        self.bids, self.asks = {}, {}
        self.last_update_id = None
        self.buffer = []

    def sorted_bids(self) -> list[list[str]]:
        return [[p, self.bids[p]] for p in sorted(self.bids, key=Decimal, reverse=True)]

    def sorted_asks(self) -> list[list[str]]:
        return [[p, self.asks[p]] for p in sorted(self.asks, key=Decimal)]


def _is_zero(qty: str) -> bool:
    return Decimal(qty) == 0


def _set(side: dict[str, str], price: str, qty: str) -> None:
    if _is_zero(qty):
        side.pop(price, None)
    else:
        side[price] = qty


def http_get_json(url: str, timeout: float = 10.0) -> tuple[int, dict[str, str], Any]:
    """GET ``url`` -> (status, headers, decoded JSON). Error statuses are returned, not raised."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), orjson.loads(exc.read() or b"null")


class ReferenceDepthClient:
    """Keeps a :class:`DepthBook` per symbol from a Binance-compatible server.

    ``ws_base`` is the stream base (``wss://stream.binance.com:9443``), ``rest_base`` the
    REST base (``https://api.binance.com``). ``stream_suffix`` picks the diff stream:
    ``"@depth@100ms"`` or ``"@depth"`` (1000 ms).
    """

    def __init__(
        self,
        ws_base: str,
        rest_base: str,
        symbols: list[str],
        *,
        mode: str = "raw",
        stream_suffix: str = "@depth@100ms",
        snapshot_limit: int = 5000,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.ws_base = ws_base.rstrip("/")
        self.rest_base = rest_base.rstrip("/")
        self.mode = mode
        self.snapshot_limit = snapshot_limit
        self.streams = {f"{s.lower()}{stream_suffix}": s.upper() for s in symbols}
        self.books = {s.upper(): DepthBook(s.upper()) for s in symbols}
        self.replies: list[dict[str, Any]] = []  # answers to our requests ({"result"/"error", "id"})
        self.connects = 0
        self.errors: list[str] = []
        self._fetching: set[str] = set()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.ws: ClientConnection | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> ReferenceDepthClient:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in [self._task, *self._tasks]:
            if task is not None:
                task.cancel()
        for task in [self._task, *self._tasks]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def url(self) -> str:
        names = list(self.streams)
        if self.mode == "raw":
            return f"{self.ws_base}/ws/{'/'.join(names)}"
        if self.mode == "subscribe":
            return f"{self.ws_base}/ws"
        return f"{self.ws_base}/stream?streams={'/'.join(names)}"

    async def _run(self) -> None:
        delay = 0.05
        while True:
            try:
                async with connect(self.url(), open_timeout=10, max_size=None) as ws:
                    self.ws = ws
                    self.connects += 1
                    delay = 0.05
                    for book in self.books.values():
                        book.reset()
                    if self.mode == "subscribe":
                        request = {"method": "SUBSCRIBE", "params": list(self.streams), "id": 1}
                        await ws.send(orjson.dumps(request).decode())  # a text frame
                    async for frame in ws:
                        await self._on_frame(frame)
            except (OSError, WebSocketException, TimeoutError) as exc:
                self.errors.append(repr(exc))
            self.ws = None
            await asyncio.sleep(delay)  # reconnect backoff, not synchronisation
            delay = min(delay * 2, 1.0)

    # --- frames --------------------------------------------------------------------------

    async def _on_frame(self, frame: str | bytes) -> None:
        message = orjson.loads(frame)
        if self.mode == "combined" and "stream" in message and "data" in message:
            message = message["data"]
        if "result" in message or "error" in message:
            self.replies.append(message)
        elif message.get("e") == "depthUpdate":
            book = self.books.get(message["s"])
            if book is not None:
                book.on_event(message)
                self._maybe_fetch(book)
        await self._notify()

    def _maybe_fetch(self, book: DepthBook) -> None:
        if book.wants_snapshot() and book.symbol not in self._fetching:
            self._fetching.add(book.symbol)
            task = asyncio.create_task(self._fetch(book))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fetch(self, book: DepthBook) -> None:
        url = f"{self.rest_base}/api/v3/depth?symbol={book.symbol}&limit={self.snapshot_limit}"
        try:
            while book.wants_snapshot():
                status, _headers, body = await asyncio.to_thread(http_get_json, url)
                if status != 200:
                    self.errors.append(f"depth {book.symbol}: {status} {body}")
                elif book.on_snapshot(body):
                    break
                await asyncio.sleep(0.05)  # pacing between snapshot attempts (steps 3-4)
        finally:
            self._fetching.discard(book.symbol)
        if book.wants_snapshot():  # a gap right inside the buffer: start over
            self._maybe_fetch(book)
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- for callers -----------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until ``predicate()`` holds (checked after every frame and snapshot)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def request(self, method: str, params: list[Any] | None, request_id: int) -> dict[str, Any]:
        """Send one method request and wait for its answer (matched by ``id``)."""
        assert self.ws is not None
        body: dict[str, Any] = {"method": method, "id": request_id}
        if params is not None:
            body["params"] = params
        await self.ws.send(orjson.dumps(body).decode())
        await self.wait_for(lambda: any(r.get("id") == request_id for r in self.replies), 10)
        return next(r for r in self.replies if r.get("id") == request_id)
