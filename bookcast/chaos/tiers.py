"""One tier of the chaos stack across its incarnations: start, SIGKILL, freeze, restart, stop.

Each incarnation is a :class:`bookcast.processes.TierProcess` (the real command, dying
with its parent); a restarted one gets the same port, so clients reconnect to the URL they
know, and md_service a new instance name, so its status key (and counters) are its own.
Every incarnation's log is copied to the run's log directory before the process is
discarded (a stop deletes it), for the traceback check.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bookcast.loopback import free_port
from bookcast.processes import TierProcess

EXIT_WAIT_S = 10.0


class Tier:
    def __init__(
        self,
        name: str,
        module: str,
        log_dir: Path,
        env: Mapping[str, str],
        args: Sequence[str] = (),
        listens: bool = False,
        instance_env: str | None = None,
    ) -> None:
        self.name = name
        self._module, self._args, self._env = module, list(args), dict(env)
        self._listens = listens
        self._instance_env = instance_env  # env var naming the incarnation (md_service's instance)
        self.port = free_port() if listens else None
        self.log_dir = log_dir
        self.incarnation = 0
        self.proc: TierProcess | None = None
        self.frozen = False

    @property
    def instance(self) -> str:
        """This incarnation's name: ``md-1.2`` is md-1's second process."""
        return f"{self.name}.{self.incarnation}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.running

    def start(self) -> None:
        self.incarnation += 1
        env = dict(self._env)
        if self._instance_env:
            env[self._instance_env] = self.instance
        self.proc = TierProcess(self.name, self._module, self._args, env, self._listens, self.port).start()
        self.frozen = False

    def kill(self) -> None:
        """SIGKILL, as a crash; the log is kept."""
        assert self.proc is not None
        if self.frozen:
            self.thaw()  # a stopped process dies of SIGKILL too, but thaw keeps the bookkeeping simple
        os.kill(self.proc.pid, signal.SIGKILL)
        self._wait_exit()
        self._discard()

    def restart(self) -> None:
        if self.proc is not None:
            self._discard()
        self.start()

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self.frozen = False

    def stop(self) -> None:
        """SIGTERM and wait (its shutdown is logged too), then discard."""
        if self.proc is None:
            return
        if self.frozen:
            self.thaw()
        if self.proc.running:
            os.kill(self.proc.pid, signal.SIGTERM)
            self._wait_exit()
        self._discard()

    def log_text(self) -> str:
        """The current incarnation's log so far."""
        if self.proc is None:
            return ""
        try:
            return self.proc.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _wait_exit(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + EXIT_WAIT_S
        while self.proc.running and time.monotonic() < deadline:
            time.sleep(0.02)

    def _discard(self) -> None:
        """Keep the log in the run's directory, then reap (SIGKILL if still alive) and forget."""
        assert self.proc is not None
        (self.log_dir / f"{self.instance}.log").write_text(self.log_text())
        self.proc.stop(timeout=1.0)
        self.proc = None
