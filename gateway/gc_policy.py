"""Keep Python's garbage collector from pausing the fan-out.

A gateway holds tens of thousands of long-lived objects per thousand connections. With the
default settings a burst of new connections triggers full collections that each scan all of
them: pauses of 100–500 ms at a few thousand clients, during which no frame goes out. The
objects of live connections need no scanning: they are *frozen* (``gc.freeze``, O(1)) every
``freeze_every`` new connections, so collections only look at what is new.

Closed connections leave reference cycles (inside ``websockets``) that only a full
collection frees; frozen ones wait for the next maintenance: once ``collect_after`` connections
have closed (and at least half as many as are open), everything is unfrozen, collected once
and frozen again — one pause, counted, instead of many.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from gateway.core.counters import Counters

log = logging.getLogger(__name__)


class GcPolicy:
    def __init__(self, counters: Counters, freeze_every: int = 200, collect_after: int = 2000) -> None:
        self.counters = counters
        self.freeze_every = freeze_every
        self.collect_after = collect_after
        self.enabled = freeze_every > 0
        self._opened = 0
        self._closed = 0
        self._live = 0
        self._maintenance_due = False

    def start(self) -> None:
        """Freeze what start-up created (imports, the loop, the server)."""
        if self.enabled:
            gc.collect()
            gc.freeze()

    def opened(self) -> None:
        self._live += 1
        if not self.enabled:
            return
        self._opened += 1
        if self._opened >= self.freeze_every:
            self._opened = 0
            gc.freeze()
            self.counters["gc_freezes"] += 1

    def closed(self) -> None:
        self._live = max(0, self._live - 1)
        if not self.enabled:
            return
        self._closed += 1
        if self._closed >= max(self.collect_after, self._live // 2) and not self._maintenance_due:
            self._maintenance_due = True
            asyncio.get_running_loop().call_soon(self._maintain)

    def _maintain(self) -> None:
        self._maintenance_due = False
        self._closed = 0
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        ms = (time.perf_counter() - started) * 1000
        self.counters["gc_full_collections"] += 1
        self.counters["gc_full_ms"] += int(ms)
        log.info("garbage collection after connection churn: %d objects freed in %.0f ms", found, ms)
