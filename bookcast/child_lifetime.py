"""Child processes that never outlive the Python process that started them.

Why: the embedded servers and the tiers run as children on loopback ports; one left behind
holds its port and memory and confuses the next run. So every child is started here and:

* ``stop()`` / ``with`` / ``atexit`` stop them cleanly on every normal exit (including a
  ``SIGTERM`` that the application turns into ``sys.exit``, which is what the CLI does):
  whatever is registered with :func:`stop_at_exit` is stopped when the interpreter exits;
* on Linux, ``PR_SET_PDEATHSIG=SIGKILL`` kills them if the parent dies without running any
  Python code (``SIGKILL``, segfault, OOM kill): :func:`spawn` arranges it.

The lifecycle around a child (ports, readiness, stop) is :mod:`bookcast.managed_process`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Protocol

__all__ = ["Stoppable", "forget", "spawn", "stop_at_exit"]

# Runs in a tiny ``python -I -S`` that then exec()s the server, so the server keeps the pid
# that Popen reports. Doing prctl here instead of in ``preexec_fn`` keeps Python code out of
# the fork of a heavily threaded parent (librdkafka, executors), where preexec_fn can deadlock.
# The getppid() check closes the race where the parent died before prctl took effect.
# It is mdruntime.children.die_with_parent's rule for a process that is about to exec a
# foreign server: under -I -S it cannot import the project, so the few lines live here.
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


class Stoppable(Protocol):
    """What the exit hook needs of a child's owner: a stop that waits at most ``timeout``."""

    def stop(self, timeout: float = ...) -> None: ...


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
_LIVE: set[Stoppable] = set()


def spawn(argv: list[str], *, log_path: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr in ``log_path``, killed (on Linux) if we die.

    Raises ``OSError`` if it cannot be executed.
    """
    if sys.platform == "linux" and sys.executable:
        argv = [sys.executable, "-I", "-S", "-c", _PDEATHSIG_EXEC, str(os.getpid()), *argv]

    def popen() -> subprocess.Popen[bytes]:
        # A file, not a pipe: nobody drains it, and a full pipe would stall the server.
        with log_path.open("wb") as log:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                close_fds=True,
                # Own session: a terminal Ctrl-C reaches only the parent, which then stops
                # the servers in order instead of having them vanish under its feet.
                start_new_session=True,
            )

    return _SPAWNER.run(popen)


def stop_at_exit(child: Stoppable) -> None:
    """Stop ``child`` when the interpreter exits normally, unless :func:`forget` comes first."""
    with _LIVE_LOCK:
        _LIVE.add(child)


def forget(child: Stoppable) -> None:
    """``child`` is stopped (or being stopped by its owner): nothing to do at exit."""
    with _LIVE_LOCK:
        _LIVE.discard(child)


def _stop_all_at_exit() -> None:
    """Stop whatever is still running when the interpreter exits normally."""
    with _LIVE_LOCK:
        children = list(_LIVE)
    for child in children:
        with contextlib.suppress(Exception):
            child.stop(timeout=5.0)


def _forget_after_fork() -> None:
    """A forked child does not own its parent's servers and must not stop them at exit."""
    global _LIVE_LOCK, _SPAWNER
    _LIVE_LOCK = threading.Lock()
    _LIVE.clear()
    _SPAWNER = _Spawner()


atexit.register(_stop_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
