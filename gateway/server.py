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

from websockets.asyncio.server import Server, serve

from gateway.config import GatewayConfig
from gateway.handler import serve_client
from gateway.http_api import HttpApi
from gateway.hub import Hub
from gateway.limits import Admission
from gateway.session import ClientSession, GatewayConnection
from gateway.slow import SlowClients

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


async def run_gateway(
    cfg: GatewayConfig, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop``), then shut down gracefully."""
    hub = Hub(cfg)
    admission = Admission(cfg.max_connections, cfg.max_connections_per_ip)
    slow = SlowClients(hub)
    connection_class = type("Connection", (GatewayConnection,), {"hooks": _Hooks(cfg, slow, admission)})
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    background = [
        asyncio.create_task(hub.link.run(), name="redis-link"),
        asyncio.create_task(slow.watch(), name="slow-clients"),
        asyncio.create_task(_every(cfg.audit_s, hub.audit), name="audit"),
    ]
    try:
        async with serve(
            lambda conn: serve_client(hub, slow, conn),  # type: ignore[arg-type]
            cfg.host,
            cfg.port,
            create_connection=connection_class,
            process_request=HttpApi(hub, admission),
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
        ) as server:
            port = server.sockets[0].getsockname()[1] if server.sockets else cfg.port
            log.info("listening on ws://%s:%d/ws (REST: http://%s:%d/health)", cfg.host, port, cfg.host, port)
            if ready is not None:
                ready.set()
            await stop.wait()
            await _shut_down(hub, server, cfg.shutdown_s)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await hub.link.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


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
