"""``--workers N``: N gateway processes on one port (SO_REUSEPORT), each its own Redis subscriber.

The kernel spreads new connections over the workers' listening sockets. This supervisor
starts them (``python -m gateway --workers 1 --reuse-port``), restarts one that dies (with
backoff), forwards SIGTERM/SIGINT so each closes its clients with 1001, waits up to the
shutdown bound and then kills what is left. Workers die with the supervisor (Linux:
``PR_SET_PDEATHSIG``), so none outlives it even after a SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from gateway.config import GatewayConfig
from mdruntime.children import die_with_parent

log = logging.getLogger(__name__)

SUPERVISOR_ENV = "BOOKCAST_GATEWAY_SUPERVISOR_PID"
MAX_RESTART_DELAY_S = 10.0


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (not listen) a SO_REUSEPORT socket: resolves port 0 and holds the port for the workers."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def die_with_supervisor() -> None:
    """In a worker: exit when the supervisor dies (SIGTERM: a graceful 1001 to our clients)."""
    parent = os.environ.get(SUPERVISOR_ENV)
    if parent:
        die_with_parent(int(parent), signal.SIGTERM)


class Supervisor:
    def __init__(self, cfg: GatewayConfig, argv: Sequence[str]) -> None:
        self.cfg = cfg
        self.argv = list(argv)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def _spawn(self, index: int, port: int) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "gateway", *self.argv]
        args += ["--workers", "1", "--reuse-port", "--host", self.cfg.host, "--port", str(port)]
        env = {**os.environ, SUPERVISOR_ENV: str(os.getpid()), "BOOKCAST_GATEWAY_WORKER": str(index)}
        return subprocess.Popen(args, env=env)

    def run(self) -> int:
        holder = reserve_port(self.cfg.host, self.cfg.port)
        port = holder.getsockname()[1]
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        log.info("starting %d workers on %s:%d", self.cfg.workers, self.cfg.host, port)
        delays: dict[int, float] = {}  # per worker: the backoff of its next restart
        due: dict[int, float] = {}  # per dead worker: when to start it again
        try:
            for i in range(self.cfg.workers):
                self.procs[i] = self._spawn(i, port)
            while not self.stopping:
                now = time.monotonic()
                for i, proc in list(self.procs.items()):
                    if i in due:
                        if now >= due[i]:
                            del due[i]
                            self.procs[i] = self._spawn(i, port)
                        continue
                    code = proc.poll()
                    if code is not None:
                        delays[i] = min(MAX_RESTART_DELAY_S, max(0.5, delays.get(i, 0.25) * 2))
                        due[i] = now + delays[i]
                        log.error("worker %d exited with %s; restarting in %.1fs", i, code, delays[i])
                time.sleep(0.2)
        finally:
            self._stop_all()
            holder.close()
        return 0

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def _stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.cfg.shutdown_s + 2.0
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not stop in time; killing it", proc.pid)
                proc.kill()
                proc.wait()
        log.info("all workers stopped")
