"""When a batch of deltas leaves the gateway: once the window's burst is over. Pure: time is an argument.

md_service writes one window's pairs right after the window's end (``md_service.cadence``),
so a gateway receives each window as one burst of Pub/Sub messages spread over a few
milliseconds and several event-loop turns. Flushing at the end
of every turn gave a client on pairs of several slots one frame per slot, up to 8 per
window. The clock holds the batch until no delta has arrived for ``quiet_s`` (the burst is
over), and never longer than ``hold_s`` after its first delta (a stream that never pauses
still leaves on time). Both zero: flush at the end of the turn, as before.

What it costs: a delta waits until its burst ends, ``quiet_s`` after the burst's last
message (10 ms by default), plus the rest of the burst (a few ms; more when md_service runs
late or spreads its slots, ``BOOKCAST_MD_SLOT_SPAN_MS``); ``hold_s`` (40 ms) bounds the
sum. The quiet gap must exceed the gaps between md_service's writes as they arrive here: a
loaded md_service or Redis stretches them, and with slots 2.5 ms apart a 5 ms gap split a
window in 1.8 frames on a busy machine (1.07 at 10 ms, the same run's conditions).
"""

from __future__ import annotations


class FrameClock:
    """Tracks the pending batch's first and last arrival; :meth:`due` says when it may leave."""

    __slots__ = ("first", "hold_s", "last", "quiet_s")

    def __init__(self, quiet_s: float, hold_s: float) -> None:
        if quiet_s < 0 or hold_s < 0:
            raise ValueError("quiet_s and hold_s must be >= 0")
        self.quiet_s = quiet_s
        self.hold_s = max(hold_s, quiet_s)
        self.first: float | None = None
        self.last = 0.0

    @property
    def immediate(self) -> bool:
        """True when batches leave at the end of the event-loop turn (no holding)."""
        return self.hold_s == 0

    def arrived(self, now: float) -> bool:
        """A delta joined the batch at ``now``; True if it is the batch's first (arm a timer)."""
        self.last = now
        if self.first is None:
            self.first = now
            return True
        return False

    def due(self) -> float:
        """When the pending batch may leave: its burst is over, or it has waited ``hold_s``."""
        first = self.first
        if first is None:
            return self.last
        return min(first + self.hold_s, self.last + self.quiet_s)

    def flushed(self) -> None:
        self.first = None
