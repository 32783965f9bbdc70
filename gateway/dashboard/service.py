"""The dashboard's I/O: the gateway's status on the bus, ``/dashboard`` and its WebSocket feed.

Once a second (``BOOKCAST_STATUS_BUS_S``) the gateway

1. turns its counters and the interval's latency into a status
   (:func:`gateway.dashboard.aggregate.gateway_status`) and writes it to the status bus
   (:mod:`mdcore.status_bus`), so every gateway's dashboard can show the whole deployment;
2. if anyone watches ``/dashboard``, reads the live statuses of every tier in one round
   trip, combines them with its own (:func:`~gateway.dashboard.aggregate.combine`) and sends
   the message to every viewer.

Redis trouble costs the page the other tiers' numbers, never the gateway anything: the
gateway's own status is still shown, with the link marked down. The page itself is read
once from the package (``dashboard.html``) and served as is: no CDN, no other request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import orjson
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection, broadcast
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gateway.dashboard.aggregate import combine, gateway_status
from gateway.http_api import DuplicateHeaderError, duplicate_header_response, single_header
from gateway.hub import Hub
from gateway.metrics import LatencyListener
from gateway.routes import Route, exact
from mdcore.latency import IntervalReader
from mdcore.settings import env_float
from mdcore.status_bus import (
    DEFAULT_INTERVAL_S,
    decode_status,
    index_key,
)
from mdruntime.status_bus import write_status_async

log = logging.getLogger(__name__)

PAGE_PATH = "/dashboard"
WS_PATH = "/dashboard/ws"
CLOSE_GOING_AWAY = 1001


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    interval_s: float = DEFAULT_INTERVAL_S  # 0: no status on the bus (the page still shows this gateway)
    instance: str = ""


def load_dashboard_config(env: Mapping[str, str] = os.environ) -> DashboardConfig:
    """``BOOKCAST_STATUS_BUS_S``: seconds between statuses (0 = publish none)."""
    interval = env_float(env, "BOOKCAST_STATUS_BUS_S", DEFAULT_INTERVAL_S, 0.0, 60.0)
    worker = env.get("BOOKCAST_GATEWAY_WORKER", "").strip()
    instance = f"{socket.gethostname()}-{os.getpid()}" + (f"-w{worker}" if worker else "")
    return DashboardConfig(interval_s=interval, instance=instance)


def page_bytes() -> bytes:
    return resources.files("gateway.dashboard").joinpath("dashboard.html").read_bytes()


class Dashboard:
    """Publishes this gateway's status and feeds the ``/dashboard`` page's viewers."""

    def __init__(self, hub: Hub, latency: LatencyListener, cfg: DashboardConfig) -> None:
        self.hub = hub
        self.cfg = cfg
        self.interval_s = cfg.interval_s or DEFAULT_INTERVAL_S
        self.instance = cfg.instance or f"{socket.gethostname()}-{os.getpid()}"
        self.prefix = hub.cfg.redis_prefix
        self._readers = {stage: IntervalReader(h) for stage, h in latency.histograms.items()}
        self._before: dict[str, int] = dict(hub.counters)
        self._before_at = time.monotonic()
        self.viewers: set[ServerConnection] = set()
        self.last_message: bytes | None = None
        self.bus_errors = 0
        self._page = page_bytes()
        self._closing: set[asyncio.Task[None]] = set()

    # --- HTTP ----------------------------------------------------------------------------

    def page(self) -> Response:
        headers = Headers(
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(self._page))),
                ("Cache-Control", "no-store"),
            ]
        )
        return Response(200, "OK", headers, self._page)

    async def serve_viewer(self, conn: ServerConnection) -> None:
        """One ``/dashboard/ws`` connection: the latest message at once, then one a second."""
        self.viewers.add(conn)
        try:
            if self.last_message is not None:
                await conn.send(self.last_message.decode())
            async for _ in conn:  # the page sends nothing; this waits for the close
                pass
        except ConnectionClosed:
            pass
        finally:
            self.viewers.discard(conn)

    # --- the one-second loop ---------------------------------------------------------------

    def own_status(self) -> dict[str, Any]:
        """This process's status over the interval since the previous call."""
        hub = self.hub
        now = time.monotonic()
        counters = dict(hub.counters)
        gauges = {
            "connections": len(hub.sessions),
            "subscriptions": hub.subscriber_count(),
            "stale_clients": sum(1 for s in hub.sessions if s.lagging),
            "replicas": len(hub.channels),
            "redis_up": hub.link.up,
        }
        latency = {stage: reader.take() for stage, reader in self._readers.items()}
        status = gateway_status(
            self.instance, time.time_ns() // 1_000_000, round(now - self._before_at, 3), counters,
            self._before, gauges, latency,
        )  # fmt: skip
        self._before, self._before_at = counters, now
        return status

    async def tick(self) -> None:
        """Publish this gateway's status; if anyone watches, send them the combined message."""
        own = self.own_status()
        others: list[dict[str, Any]] = []
        try:
            if self.hub.link.up:  # Redis unreachable: show this gateway now rather than wait on timeouts
                others = await asyncio.wait_for(self._exchange(own), self.interval_s)
        except (RedisError, OSError, TimeoutError) as exc:
            self.bus_errors += 1
            if self.bus_errors == 1 or self.bus_errors % 60 == 0:
                log.warning("status bus: %s (the dashboard shows this gateway only)", exc)
        if not self.viewers:
            return
        gateways = [own] + [s for s in others if s["kind"] == "gateway" and s.get("id") != self.instance]
        message = combine(
            own["t"],
            gateways,
            [s for s in others if s["kind"] == "md"],
            [s for s in others if s["kind"] == "load"],
        )
        self.last_message = orjson.dumps(message)
        broadcast(self.viewers, self.last_message.decode())

    async def _exchange(self, own: dict[str, Any]) -> list[dict[str, Any]]:
        """Publish ``own``; return every live status on the bus if anyone watches."""
        if self.cfg.interval_s > 0:
            await self._publish(own)
        return await self._read_statuses() if self.viewers else []

    async def _publish(self, status: dict[str, Any]) -> None:
        client = self.hub.link.client
        await write_status_async(client, self.prefix, "gateway", self.instance, status, self.interval_s)

    async def _read_statuses(self) -> list[dict[str, Any]]:
        client = self.hub.link.client
        now_ms = time.time_ns() // 1_000_000
        keys = await client.zrangebyscore(index_key(self.prefix), now_ms, "+inf")
        if not keys:
            return []
        found = [decode_status(raw) for raw in await client.mget(keys)]
        return [s for s in found if s is not None]

    async def run(self) -> None:
        """Tick every interval until cancelled; closes the viewers (1001) when the gateway shuts down."""
        while True:
            await asyncio.sleep(self.interval_s)
            if self.hub.shutting_down:
                self.close_viewers()
                continue
            try:
                await self.tick()
            except Exception:  # the page is an aid: a bug here must not take the gateway down
                log.exception("dashboard tick failed")

    def close_viewers(self) -> None:
        """Tell every viewer the gateway is going away (1001); the page reconnects by itself."""
        for conn in list(self.viewers):
            task = asyncio.get_running_loop().create_task(conn.close(CLOSE_GOING_AWAY, "shutting down"))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self.viewers.clear()


Admit = Callable[[ServerConnection, Request, str], Response | None]


def dashboard_routes(dashboard: Dashboard, admit: Admit) -> list[Route]:
    """``/dashboard`` (the page) and ``/dashboard/ws`` (its live feed), for the gateway's route table.

    ``/dashboard/ws`` goes through ``admit`` like ``/ws`` (token, Origin, connection limits).
    """

    async def page(conn: ServerConnection, request: Request) -> Response | None:
        return dashboard.page()

    async def feed(conn: ServerConnection, request: Request) -> Response | None:
        try:
            upgrade = single_header(request.headers, "Upgrade")
        except DuplicateHeaderError as exc:
            return duplicate_header_response(exc)
        if (upgrade or "").strip().lower() != "websocket":
            return _text(426, "Upgrade Required", f"{WS_PATH} is a WebSocket endpoint\n")
        return admit(conn, request, urlsplit(request.path).query)

    return [
        Route("dashboard page", exact(PAGE_PATH), page),
        Route("dashboard feed", exact(WS_PATH), feed, dashboard.serve_viewer),
    ]


def _text(status: int, phrase: str, text: str) -> Response:
    body = text.encode()
    headers = Headers([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return Response(status, phrase, headers, body)
