"""Tier processes (feed, md_service, gateway) run as children that never outlive their parent.

The same lifecycle as the embedded servers (:class:`bookcast.managed_process.ManagedProcess`):
parent-death signal, output to a log file, SIGTERM then SIGKILL on stop. ``bookcast up``
and the integration tests start the tiers this way, so tests exercise the real commands.
"""

from __future__ import annotations

import http.client
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from bookcast.loopback import LOOPBACK
from bookcast.managed_process import ManagedProcess


class TierProcess(ManagedProcess):
    """``python -m <module> <args>`` with extra environment.

    ``listens=True`` (the gateway) gives it ``--port`` on a free loopback port (or ``port``)
    and counts it as started once ``/health`` answers; other tiers count as started at once,
    and callers wait for the effect they need (data in Redis, a client synced).
    """

    stop_signal = signal.SIGTERM

    def __init__(
        self,
        name: str,
        module: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        listens: bool = False,
        port: int | None = None,
    ) -> None:
        super().__init__(port)
        self.name = name  # per instance: feed, md-1, gateway-2, …
        self._module = module
        self._extra_args = list(args)
        self._extra_env = dict(env or {})
        self._listens = listens

    def _binary(self) -> str:
        return sys.executable

    def _args(self, port: int, workdir: Path) -> list[str]:
        args = ["-m", self._module, *self._extra_args]
        if self._listens:
            args += ["--host", LOOPBACK, "--port", str(port)]
        return args

    def _env(self) -> dict[str, str]:
        return {**os.environ, **self._extra_env, "PYTHONUNBUFFERED": "1"}

    def _probe(self, budget: float) -> bool:
        if not self._listens:
            return True
        try:
            conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=max(budget, 0.05))
            conn.request("GET", "/health")
            conn.getresponse().read()
            conn.close()
        except OSError:
            return False
        return True

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing in the tier gets to run."""
        os.kill(self.pid, signal.SIGKILL)


def tier_env(kafka_bootstrap: str, redis_url: str, **settings: str) -> dict[str, str]:
    """The environment every tier reads, plus ``BOOKCAST_*`` overrides (``TOPIC="x"``)."""
    env = {"KAFKA_BOOTSTRAP": kafka_bootstrap, "REDIS_URL": redis_url}
    env.update({f"BOOKCAST_{key.upper()}": value for key, value in settings.items()})
    return env
