"""When to take a partition over from the instance writing it: the pure decision, no I/O.

Every writer beats in Redis: each ``BOOKCAST_MD_HEARTBEAT_MS`` it stores Redis' own clock in
``beat:<p>``, fenced by its owner token (:mod:`md_service.lease_script`). An instance that
could write the partition instead (a standby that follows it, or a group member that would
adopt it) reads the owner token, the beat and Redis' clock now and then, and asks
:class:`TakeoverWatch` whether the writer is gone:

- the owner token is a *release marker*: the writer stopped cleanly and gave the partition
  away; take it after ``release_grace_s`` (0 for a warm standby, a little more for an
  instance that would have to start cold, so a warm one wins);
- the beat is older than ``dead_after_s`` on Redis' clock: the writer died, froze, or lost
  Redis; take it;
- no beat at all (a writer that never beat): the same, timed by our own clock from when the
  token was first seen unchanged;
- no owner at all: never (nothing to continue; the consumer group decides).

Ages are measured on Redis' clock, so the instances' clocks need not agree. The decision is
only a proposal: the takeover itself is a compare-and-set in Redis that checks the token and
the beat's age again, atomically (:mod:`md_service.claim_script`), so a writer that beat in
the meantime keeps its partition and two candidates cannot both win.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

RELEASED = "released/"  # prefix of an owner token given away by a clean stop


def released_marker(token: str) -> str:
    """What a writer leaves as owner of a partition it gives away (never a live token)."""
    return f"{RELEASED}{token}"


def is_released(owner: str) -> bool:
    return owner.startswith(RELEASED)


@dataclass(frozen=True, slots=True)
class OwnerView:
    """A partition's writer as Redis showed it at one instant."""

    owner: str  # the owner token, a release marker, or "" (none)
    beat_ms: int | None  # Redis' clock at the writer's last beat (None: never beat)
    now_ms: int  # Redis' clock when this was read


@dataclass(slots=True)
class _Seen:
    owner: str
    beat_ms: int | None
    since: float  # our clock when this (owner, beat) was first seen


class TakeoverWatch:
    """Per partition: is its writer gone long enough to take the partition over?"""

    def __init__(
        self, dead_after_s: float, release_grace_s: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.dead_after_s = dead_after_s
        self.release_grace_s = release_grace_s
        self.clock = clock
        self._seen: dict[int, _Seen] = {}

    def due(self, partition: int, view: OwnerView) -> bool:
        """Record one reading; True if the partition should be taken over now."""
        now = self.clock()
        seen = self._seen.get(partition)
        if seen is None or (seen.owner, seen.beat_ms) != (view.owner, view.beat_ms):
            seen = self._seen[partition] = _Seen(view.owner, view.beat_ms, now)
        if not view.owner:
            return False
        if is_released(view.owner):
            return now - seen.since >= self.release_grace_s
        if view.beat_ms is not None:
            return view.now_ms - view.beat_ms >= self.dead_after_s * 1000
        return now - seen.since >= self.dead_after_s

    def forget(self, partition: int) -> None:
        """Stop watching a partition (we write it now, or no longer could)."""
        self._seen.pop(partition, None)

    def silent_ms(self, view: OwnerView) -> int | None:
        """How long the writer has not beaten, for the log line (None: unknown)."""
        return None if view.beat_ms is None else view.now_ms - view.beat_ms
