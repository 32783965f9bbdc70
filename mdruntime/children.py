"""Child processes that never outlive their parent, and starting a group of them together.

The gateway's supervisor, the load generator and the parallel feed each spawn worker
processes; each had its own copy of the Linux parent-death signal and of the wait for the
workers' "ready". One copy lives here now, the most careful of them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import signal
import sys
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 0.1  # how often wait_children_ready looks at the children while none reports


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Have the kernel send ``sig`` to this process when ``parent_pid`` dies (Linux; a no-op
    elsewhere), so no worker outlives its parent even after a SIGKILL. Call it first thing.

    The parent may die before ``prctl`` takes effect: then ``getppid()`` is no longer
    ``parent_pid`` and the process ends at once, by ``sig`` itself (as the kernel would have
    ended it), or with status 128 + ``sig`` if something handles or ignores that signal.
    (The signal comes when the parent *thread* that spawned the child exits: spawn from a
    thread that lives as long as the process, such as the main one.)
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d): may outlive the parent", errno)
    except (OSError, AttributeError) as exc:  # no libc, or a libc without prctl
        log.warning("cannot set PR_SET_PDEATHSIG (%s): may outlive the parent", exc)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        signal.raise_signal(sig)
        os._exit(128 + int(sig))


class _Results(Protocol):
    def get(self, block: bool = True, timeout: float | None = None) -> Any: ...


def wait_children_ready(
    results: _Results,
    children: Sequence[BaseProcess],
    timeout: float,
    what: str,
    what_plural: str,
) -> None:
    """Wait until each of ``children`` has put one message on ``results``, before a common start.

    Messages are ``(kind, index, payload)``; kind ``"error"`` means that child could not start
    (``payload`` says why), any other kind that it is ready. Raises :class:`RuntimeError` if a
    child fails or exits (even with status 0: a child that ends before its start signal never
    will report) or ``timeout`` seconds pass. ``what`` / ``what_plural`` name the children in
    the messages ("feed process", "feed processes").
    """
    deadline = time.monotonic() + timeout
    count = len(children)
    ready = 0
    while ready < count:
        try:
            kind, index, payload = results.get(timeout=POLL_S)
        except queue.Empty:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {ready} of {count} {what_plural} got ready") from None
            if any(not child.is_alive() for child in children):
                raise RuntimeError(f"a {what} died while starting; see its output above") from None
            continue
        if kind == "error":
            raise RuntimeError(f"{what} {index} failed to start: {payload}")
        ready += 1
