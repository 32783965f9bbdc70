"""Clients that cannot keep up: stale while over the high-water mark, healed by snapshots.

The transport calls :meth:`SlowClients.paused` when a client's unsent bytes pass the
high-water mark: the client leaves the fan-out (it is *stale*) and the position each of its
pairs had reached is remembered. When its buffer drains below the low-water mark
(:meth:`SlowClients.resumed`) it gets a fresh snapshot of every pair that moved meanwhile,
then deltas again: conflation by snapshot, never an unannounced gap. A client stale for
longer than ``slow_close_s`` is closed with :data:`CLOSE_TOO_SLOW`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.hub import Hub
from gateway.session import SessionState, Subscriber
from mdcore.messages import StreamPosition

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4008
WATCH_PERIOD_S = 0.25


class SlowClients:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.stale: dict[Subscriber, None] = {}  # stale sessions, oldest first (the watch closes them)

    def paused(self, session: Subscriber) -> None:
        """Over the high-water mark: stop its deltas, remember where each pair stood."""
        hub = self.hub
        if session.state is not SessionState.LIVE or session not in hub.sessions:
            return
        marks: dict[str, StreamPosition | None] = {}
        for pair in session.pairs:
            replica = hub.replica(pair)
            owed = hub.take_owed(session, pair)  # (then its healing owes the snapshot)
            marks[pair] = None if owed or replica is None else replica.sent
        session.go_stale(marks, time.monotonic())
        hub.fanout.leave(session)
        self.stale[session] = None
        hub.counters["slow_paused"] += 1

    def resumed(self, session: Subscriber) -> None:
        """Below the low-water mark again (called from the transport): heal it on the next turn."""
        if session.lagging:
            asyncio.get_running_loop().call_soon(self.heal, session)

    def heal(self, session: Subscriber) -> None:
        hub = self.hub
        if not session.lagging or session not in hub.sessions or not session.open:
            return
        if session.buffered_bytes() > hub.cfg.low_water_bytes:
            return  # it filled up again before this turn; the next resume heals it
        marks = session.come_back()
        self.stale.pop(session, None)
        sent = 0
        for pair in sorted(session.pairs):
            replica = hub.replica(pair)
            mark = marks.get(pair)
            if replica is None or not replica.live:
                hub.owe_snapshot(session, pair)
            elif mark is None or mark != replica.position:
                sent += hub.send_snapshot(session, pair)
        hub.counters["slow_conflations"] += 1
        hub.counters["slow_conflation_snapshots"] += sent
        if not session.lagging:  # a big snapshot may have made it stale again
            hub.fanout.join(session)

    def forget(self, session: Subscriber) -> None:
        self.stale.pop(session, None)

    async def watch(self) -> None:
        """Close clients that stay stale too long; runs for the server's life."""
        hub = self.hub
        while True:
            await asyncio.sleep(WATCH_PERIOD_S)
            deadline = time.monotonic() - hub.cfg.slow_close_s
            for session in [s for s in self.stale if s.lag_since < deadline]:
                self.stale.pop(session, None)
                hub.counters["closed_slow"] += 1
                log.info("closing %s: over the high-water mark for %.0fs", session.peer, hub.cfg.slow_close_s)
                session.close(CLOSE_TOO_SLOW, "too slow: could not keep up")
