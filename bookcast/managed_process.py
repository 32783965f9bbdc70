"""One child server's lifecycle: spawn on a free loopback port, wait until it answers, stop, reap.

Why: the embedded Kafka and Redis, the cluster nodes and the tiers (:mod:`bookcast.processes`)
are all started, probed and stopped the same way; a subclass says only which binary, which
arguments and how to tell that *its* server (not a stranger on the port) answers. A failed start
keeps the server's log and quotes its tail, and a port lost to a race is retried on another one.
How children are kept from outliving us is :mod:`bookcast.child_lifetime`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from bookcast import child_lifetime
from bookcast.loopback import LOOPBACK, free_port

__all__ = ["EmbeddedServerError", "ManagedProcess"]

_POLL_INTERVAL = 0.02  # seconds between readiness probes; the servers are ready in ~0.1 s
_PROBE_BUDGET = 0.5  # max seconds per probe, so a stranger squatting the port can't stall us
_PORT_ATTEMPTS = 3  # a picked free port can be taken before the server binds it; retry then
_LOG_TAIL_BYTES = 4096


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started (or was used before it was started)."""


class _PortTakenError(EmbeddedServerError):
    """The server lost the race for its port; start() retries on another one."""


def _tail(path: Path, max_bytes: int = _LOG_TAIL_BYTES) -> str:
    """Last bytes of a log file as text, for error messages."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_bytes))
            return fh.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"<log unavailable: {exc}>"


def _looks_like_port_conflict(log_text: str) -> bool:
    lowered = log_text.lower()
    return "addrinuse" in lowered or "address in use" in lowered or "already in use" in lowered


class ManagedProcess:
    """Lifecycle shared by every child server and tier: spawn, wait until it answers, stop, reap."""

    name: str = "server"
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, port: int | None = None) -> None:
        self._requested_port = port
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._pid: int | None = None
        self._workdir: Path | None = None
        self._log_path: Path | None = None
        self._returncode: int | None = None

    # -- to be provided by subclasses -------------------------------------------------------

    def _binary(self) -> str:
        raise NotImplementedError

    def _args(self, port: int, workdir: Path) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _probe(self, budget: float) -> bool:
        """One readiness check that takes at most about ``budget`` seconds."""
        raise NotImplementedError

    # -- public API --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The loopback TCP port of the current (or last) process."""
        if self._port is None:
            raise EmbeddedServerError(f"{self.name} has not been started")
        return self._port

    @property
    def pid(self) -> int:
        """The pid of the current (or last) server process."""
        if self._pid is None:
            raise EmbeddedServerError(f"{self.name} has not been started")
        return self._pid

    @property
    def log_path(self) -> Path:
        """The file that receives the server's stdout and stderr (deleted by a clean stop)."""
        if self._log_path is None:
            raise EmbeddedServerError(f"{self.name} has not been started")
        return self._log_path

    @property
    def running(self) -> bool:
        """True while the process is alive (lets a supervisor notice a crashed server)."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status once the process has exited, kept after ``stop()``; None while running."""
        proc = self._proc
        return proc.poll() if proc is not None else self._returncode

    def log_tail(self, max_bytes: int = _LOG_TAIL_BYTES) -> str:
        """The end of the server's log, e.g. to report why it died."""
        return _tail(self.log_path, max_bytes)

    def rss_bytes(self) -> int | None:
        """Resident memory of the server process, or None if unknown (not running, not Linux)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return None
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return None

    def start(self, timeout: float = 30.0) -> Self:
        """Start on a free loopback port and return once the server answers its protocol."""
        with self._lock:
            if self._proc is not None:
                raise EmbeddedServerError(f"{self.name} is already started (pid {self._pid})")
            deadline = time.monotonic() + timeout
            attempts = 1 if self._requested_port is not None else _PORT_ATTEMPTS
            for attempt in range(1, attempts + 1):
                port = self._requested_port or free_port()
                self._launch(port)
                try:
                    self._wait_ready(deadline, timeout)
                except _PortTakenError:
                    self._discard(keep_log=attempt == attempts)
                    if attempt == attempts:
                        raise
                    continue
                except BaseException:
                    self._discard(keep_log=True)
                    raise
                return self
            raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit, SIGKILL it after ``timeout``, reap it. Safe to call twice."""
        with self._lock:
            if self._proc is None:
                return
            self._discard(timeout=timeout)

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self._pid} port={self._port}" if self.running else "stopped"
        return f"<{type(self).__name__} {state}>"

    # -- internals ---------------------------------------------------------------------------

    def _launch(self, port: int) -> None:
        try:
            binary = self._binary()
        except Exception as exc:
            raise EmbeddedServerError(f"no {self.name} server binary: {exc}") from exc
        workdir = Path(tempfile.mkdtemp(prefix=f"bookcast-{self.name}-"))
        log_path = workdir / f"{self.name}.log"
        argv = [binary, *self._args(port, workdir)]
        try:
            self._proc = child_lifetime.spawn(argv, log_path=log_path, cwd=workdir, env=self._env())
        except OSError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise EmbeddedServerError(f"cannot execute {argv[0]!r} for {self.name}: {exc}") from exc
        child_lifetime.stop_at_exit(self)  # from now on it is stopped at exit, even mid start-up
        self._pid = self._proc.pid
        self._port = port
        self._workdir = workdir
        self._log_path = log_path
        self._returncode = None

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        proc = self._proc
        assert proc is not None
        while True:
            code = proc.poll()
            if code is not None:
                tail = self.log_tail()
                message = (
                    f"{self.name} exited with status {code} during start-up on "
                    f"{LOOPBACK}:{self._port}; log {self._log_path}:\n{tail}"
                )
                if _looks_like_port_conflict(tail) and self._requested_port is None:
                    raise _PortTakenError(message)
                raise EmbeddedServerError(message)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EmbeddedServerError(
                    f"{self.name} (pid {proc.pid}) did not answer on {LOOPBACK}:{self._port} "
                    f"within {timeout:.1f}s; log {self._log_path}:\n{self.log_tail()}"
                )
            if self._probe(min(remaining, _PROBE_BUDGET)):
                return
            time.sleep(min(_POLL_INTERVAL, max(0.0, deadline - time.monotonic())))

    def _discard(self, timeout: float = 5.0, keep_log: bool = False) -> None:
        """Terminate, reap, forget the process; keep the log dir only to explain a failure."""
        proc = self._proc
        try:
            if proc is not None:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(self.stop_signal)
                    try:
                        proc.wait(timeout=timeout)
                    except subprocess.TimeoutExpired:
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                        proc.wait()
                self._returncode = proc.returncode
        finally:
            self._proc = None
            child_lifetime.forget(self)
            if self._workdir is not None and not keep_log:
                shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
