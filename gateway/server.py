"""Run one gateway process: the WebSocket server with REST beside it, on uvloop."""

from __future__ import annotations

import asyncio
import logging
import signal

from websockets.asyncio.server import serve

from gateway.config import GatewayConfig
from gateway.handler import serve_client
from gateway.http_api import HttpApi
from gateway.hub import Hub

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
SHUTDOWN_BOUND_S = 5.0


async def run_gateway(cfg: GatewayConfig, ready: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or cancellation), then close clients with 1001 and exit."""
    hub = Hub(cfg)
    link_task = asyncio.create_task(hub.link.run(), name="redis-link")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve(
        lambda conn: serve_client(hub, conn),
        cfg.host,
        cfg.port,
        process_request=HttpApi(hub),
        max_size=cfg.max_frame_bytes,
        compression=None,  # per-client deflate would defeat encode-once fan-out
        ping_interval=cfg.ping_interval_s,
        ping_timeout=cfg.ping_timeout_s,
        close_timeout=2,
        server_header="bookcast",
    ) as server:
        port = server.sockets[0].getsockname()[1] if server.sockets else cfg.port
        log.info("listening on ws://%s:%d/ws (REST: http://%s:%d/health)", cfg.host, port, cfg.host, port)
        if ready is not None:
            ready.set()
        try:
            await stop.wait()
        finally:
            log.info("shutting down: closing %d clients with %d", len(hub.sessions), CLOSE_GOING_AWAY)
            server.close(close_connections=False)
            await asyncio.wait(
                [
                    asyncio.create_task(s.conn.close(CLOSE_GOING_AWAY, "server shutting down"))
                    for s in hub.sessions
                ]
                or [asyncio.create_task(asyncio.sleep(0))],
                timeout=SHUTDOWN_BOUND_S,
            )
            link_task.cancel()
            await hub.link.close()
