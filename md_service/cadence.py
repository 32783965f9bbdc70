"""When windows close: the slot schedule of md_service's loop. Pure: the clock is an argument.

Every pair's window lasts ``window_ms``. Windows end on the wall clock's multiples of
``window_ms`` (given ``wall_now``), so every md_service instance, on every host with a
synchronised clock, closes its windows at the same instants. Partitions take turns in
``slots`` ticks (``partition % slots``), spread over the first ``span_ms`` after each
boundary (0, md_service's default: all at the boundary), so a window's work can be split
into smaller writes at some cost to how compact its burst is.

Why not spread over the whole window: a gateway packs what arrives in one burst into one
frame per client (``gateway.core.frame_clock``). Slots spread over the whole window arrive as up
to ``slots`` bursts, and a client following pairs of several slots got several frames per
window. Even 20 ms was too long under load: md_service applies consumed messages between
slots, which stretched the gaps past the gateway's quiet gap (2.1 frames per window at 200
pairs and 3,000 events/s; 1.00 with every slot at the boundary, whose deltas also left
md_service 15 ms sooner). Every ``check_s`` each slot also owes one check of its stored state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LATE_S = 0.005  # a tick this far behind its schedule (or a slot step, if longer) is late


@dataclass(frozen=True, slots=True)
class Tick:
    """What is due now: the slots whose turn came (several when they share an instant, or the
    loop was late), and whether it was late: behind its schedule by a slot step or 5 ms."""

    slots: frozenset[int]
    check: bool  # one of them still owes this round's state check
    late: bool = False


class WindowCadence:
    """The tick schedule; :meth:`due` is asked as often as the loop can, with the time.

    Tick ``i`` is slot ``i % slots`` of window ``i // slots``, due at
    ``origin + (i // slots) * window_s + (i % slots) * step_s``.
    """

    __slots__ = (
        "_checking",
        "_tick",
        "check_s",
        "next_check",
        "next_tick",
        "origin",
        "slots",
        "step_s",
        "window_s",
    )

    def __init__(
        self,
        window_ms: int,
        slots: int,
        check_interval_ms: int,
        now: float,
        span_ms: float | None = None,
        wall_now: float | None = None,
    ) -> None:
        """``span_ms`` None spreads the slots over the whole window; ``wall_now`` (seconds since
        the Unix epoch, read at the same instant as ``now``) aligns window ends to the wall clock."""
        self.slots = slots
        self.window_s = window_ms / 1000
        span_s = self.window_s if span_ms is None else min(span_ms / 1000, self.window_s)
        self.step_s = span_s / slots
        if wall_now is None:
            self.origin = now + self.step_s
        else:  # the next multiple of the window on the wall clock, in ``now``'s clock
            self.origin = now + (-wall_now) % self.window_s
        self.check_s = check_interval_ms / 1000
        self._tick = 0
        self.next_tick = self.origin
        self.next_check = now + self.check_s
        self._checking: set[int] = set()  # slots that still owe this round's check

    def _at(self, tick: int) -> float:
        window, slot = divmod(tick, self.slots)
        return self.origin + window * self.window_s + slot * self.step_s

    def due(self, now: float) -> Tick | None:
        """The slots due at ``now`` (and advance past them), or None before the next tick."""
        if now < self.next_tick:
            return None
        late = now - self.next_tick >= max(self.step_s, LATE_S)
        if now >= self.next_check:
            self.next_check = now + self.check_s
            self._checking = set(range(self.slots))
        slots: set[int] = set()
        while self.next_tick <= now and len(slots) < self.slots:
            slots.add(self._tick % self.slots)
            self._tick += 1
            self.next_tick = self._at(self._tick)
        if self.next_tick <= now:  # a whole window behind: go on at the next window's first slot
            self._tick = math.floor((now - self.origin) / self.window_s + 1) * self.slots
            self.next_tick = self._at(self._tick)
        check = bool(slots & self._checking)
        self._checking -= slots
        return Tick(frozenset(slots), check, late)
