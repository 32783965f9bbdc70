"""Run one gateway process: the WebSocket server with REST beside it, its Redis link and timers.

On SIGTERM or SIGINT it stops accepting, refuses new handshakes with 503, closes every
client with 1001 ("going away": reconnect, to another gateway if possible) and exits within
``shutdown_s``; connections that do not finish their closing handshake in time are aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from websockets.asyncio.server import Server, serve
from websockets.http11 import Response

from gateway.binance.config import BinanceConfig, load_binance_config
from gateway.binance.dialect import BinanceDialect
from gateway.binance.gate import BinanceGate
from gateway.book_page import book_page_route
from gateway.config import GatewayConfig
from gateway.core.limits import Admission
from gateway.dashboard.service import Dashboard, dashboard_routes, load_dashboard_config
from gateway.dialect_port import HubDialectPort
from gateway.gc_policy import GcPolicy
from gateway.handler import LimitedConnection, serve_client
from gateway.http_api import HttpApi
from gateway.hub import Hub
from gateway.loop_lag import watch_loop_lag
from gateway.metrics import GatewayMetrics, load_metrics_config
from gateway.pipeline_watch import PipelineWatch
from gateway.routes import Route, Router
from gateway.session import ClientSession, GatewayConnection
from gateway.slow import SlowClients
from gateway.store_factory import detect_cluster

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001


class _Hooks:
    """What every connection reports to this process's hub (see ``GatewayConnection``)."""

    def __init__(self, cfg: GatewayConfig, slow: SlowClients, admission: Admission) -> None:
        self.send_buffer_bytes = cfg.send_buffer_bytes
        self._slow = slow
        self._admission = admission

    def paused(self, session: ClientSession) -> None:
        self._slow.paused(session)

    def resumed(self, session: ClientSession) -> None:
        self._slow.resumed(session)

    def lost(self, conn: GatewayConnection) -> None:
        self._admission.release(conn)


async def _every(period: float, job: object) -> None:
    while True:
        await asyncio.sleep(period)
        await job()  # type: ignore[operator]


def _route_table(
    hub: Hub, slow: SlowClients, http_api: HttpApi, gate: BinanceGate | None, dashboard: Dashboard
) -> Router:
    """Every path of the main port, first match wins (gateway.routes); the native protocol last."""

    async def native(conn: GatewayConnection) -> None:
        await serve_client(hub, slow, conn)

    routes = [book_page_route(http_api), *dashboard_routes(dashboard, http_api.admit)]
    if gate is not None:  # the Binance dialect on the main port: the same token and limits as /ws
        routes.append(Route("binance", gate.dialect.matches, gate.process_request, gate.dialect.serve))
    routes.append(Route("native", lambda _path: True, http_api, native))
    return Router(routes)


async def run_gateway(
    cfg: GatewayConfig,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    binance: BinanceConfig | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop``), then shut down gracefully."""
    cfg = await detect_cluster(cfg)
    hub = Hub(cfg)
    hub.link.bound_reads(cfg.redis_max_connections, cfg.redis_pool_wait_s, cfg.max_history_read)
    watch = PipelineWatch(hub).attach()
    hub.gc_policy = GcPolicy(hub.counters, cfg.gc_freeze_every, cfg.gc_collect_after)
    admission = Admission(cfg.max_connections, cfg.max_connections_per_ip)
    slow = SlowClients(hub)
    connection_class = type("Connection", (LimitedConnection,), {"hooks": _Hooks(cfg, slow, admission)})
    binance = binance if binance is not None else load_binance_config()
    # Binance clients that cannot keep up get the native slow-client policy, with its settings.
    binance = replace(binance, high_water_bytes=cfg.high_water_bytes, low_water_bytes=cfg.low_water_bytes,
                      slow_close_s=cfg.slow_close_s)  # fmt: skip
    dialect: BinanceDialect | None = None
    http_api = HttpApi(hub, admission, watch)
    gate: BinanceGate | None = None
    if binance.enabled:
        hub_port = HubDialectPort(hub)
        dialect = hub_port.dialect = BinanceDialect(hub_port, binance)
        gate = BinanceGate(dialect, http_api.admit, cfg.tokens)
    metrics = GatewayMetrics(hub, watch=watch).attach()
    dashboard = Dashboard(hub, metrics.latency, load_dashboard_config())
    # On a port of its own the dialect may use Binance's bare paths: the main port keeps /ws.
    router = _route_table(hub, slow, http_api, gate if binance.port is None else None, dashboard)
    handler, process_request = router.handler, router.process_request
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    background = [
        asyncio.create_task(hub.link.run(), name="redis-link"),
        asyncio.create_task(slow.watch(), name="slow-clients"),
        asyncio.create_task(_every(cfg.audit_s, hub.audit), name="audit"),
        asyncio.create_task(dashboard.run(), name="dashboard"),
        asyncio.create_task(watch.run(), name="pipeline-watch"),
        asyncio.create_task(watch_loop_lag(hub.overload.observe), name="loop-lag"),
    ]
    if dialect is not None:
        background.append(asyncio.create_task(dialect.run(), name="binance-ticks"))
    try:
        await metrics.serve(load_metrics_config())
        async with contextlib.AsyncExitStack() as servers:
            if gate is not None and binance.port is not None:  # the dialect on a port of its own
                await servers.enter_async_context(_serve_dialect(cfg, binance.port, gate, connection_class))
                log.info("Binance dialect on http://%s:%d%s", cfg.host, binance.port, binance.prefix)
            server = await servers.enter_async_context(
                _serve_main(cfg, handler, process_request, connection_class)
            )
            port = server.sockets[0].getsockname()[1] if server.sockets else cfg.port
            log.info("listening on ws://%s:%d/ws (REST: http://%s:%d/health)", cfg.host, port, cfg.host, port)
            if dialect is not None and binance.port is None:
                log.info("Binance dialect on http://%s:%d%s", cfg.host, port, binance.prefix)
            hub.gc_policy.start()
            if ready is not None:
                ready.set()
            await stop.wait()
            if dialect is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(dialect.close_all(), cfg.shutdown_s / 2)
            await _shut_down(hub, server, cfg.shutdown_s)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await metrics.close()
        await hub.link.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _serve_main(
    cfg: GatewayConfig,
    handler: Callable[..., Awaitable[None]],
    process_request: Callable[..., Awaitable[Response | None]],
    connection_class: type[GatewayConnection],
) -> serve:
    return serve(
        handler,
        cfg.host,
        cfg.port,
        create_connection=connection_class,
        process_request=process_request,
        max_size=cfg.max_frame_bytes,
        max_queue=4,
        write_limit=(cfg.high_water_bytes, cfg.low_water_bytes),
        compression=None,  # per-client deflate would defeat encode-once fan-out
        ping_interval=cfg.ping_interval_s,
        ping_timeout=cfg.ping_timeout_s,
        close_timeout=2,
        server_header="bookcast",
        reuse_port=cfg.reuse_port or None,
        backlog=cfg.backlog,
    )


def _serve_dialect(
    cfg: GatewayConfig, port: int, gate: BinanceGate, connection_class: type[GatewayConnection]
) -> serve:
    """The dialect's own listener, gated and counted like the main port (its connections release
    their admission when they end); frame size and keepalive are set per connection by the dialect."""
    return serve(
        gate.dialect.serve,
        cfg.host,
        port,
        create_connection=connection_class,
        process_request=gate.process_request,
        max_queue=4,
        write_limit=(cfg.high_water_bytes, cfg.low_water_bytes),
        compression=None,
        close_timeout=2,
        server_header="bookcast",
        reuse_port=cfg.reuse_port or None,
        backlog=cfg.backlog,
    )


async def _shut_down(hub: Hub, server: Server, bound_s: float) -> None:
    """Stop accepting, send every client 1001, and drop whoever has not closed by the bound."""
    started = time.monotonic()
    hub.shutting_down = True
    sessions = list(hub.sessions)
    log.info("shutting down: closing %d clients with %d", len(sessions), CLOSE_GOING_AWAY)
    server.close(close_connections=False)  # stop accepting
    hub.counters["closed_shutdown"] += len(sessions)
    grace = max(0.1, bound_s - 0.5)
    for session in sessions:
        hub.fanout.leave(session)
        session.close(CLOSE_GOING_AWAY, "server shutting down", grace)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), bound_s)
    log.info("stopped after %.1fs", time.monotonic() - started)
