"""When windows close: the slot schedule of md_service's loop. Pure: the clock is an argument.

Every pair's window lasts ``window_ms``, but partitions take turns: the window is cut
into ``slots`` ticks, and a tick closes the windows of the partitions whose turn it is
(``partition % slots``), so the work of a window is spread over it instead of landing
at one instant. Every ``check_s`` each slot also owes one check of its stored state.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tick:
    """What is due now: the slots whose turn came (more than one if the loop was late)."""

    slots: frozenset[int]
    check: bool  # one of them still owes this round's state check

    @property
    def late(self) -> bool:
        return len(self.slots) > 1


class WindowCadence:
    """The tick schedule; :meth:`due` is asked as often as the loop can, with the time."""

    __slots__ = ("_checking", "_tick", "check_s", "next_check", "next_tick", "slots", "tick_s")

    def __init__(self, window_ms: int, slots: int, check_interval_ms: int, now: float) -> None:
        self.slots = slots
        self.tick_s = window_ms / 1000 / slots
        self.check_s = check_interval_ms / 1000
        self.next_tick = now + self.tick_s
        self.next_check = now + self.check_s
        self._tick = 0
        self._checking: set[int] = set()  # slots that still owe this round's check

    def due(self, now: float) -> Tick | None:
        """The slots due at ``now`` (and advance past them), or None before the next tick."""
        if now < self.next_tick:
            return None
        if now >= self.next_check:
            self.next_check = now + self.check_s
            self._checking = set(range(self.slots))
        slots: set[int] = set()
        while self.next_tick <= now and len(slots) < self.slots:
            slots.add(self._tick % self.slots)
            self._tick += 1
            self.next_tick += self.tick_s
        if self.next_tick <= now:  # a whole window behind: start the cadence afresh
            self.next_tick = now + self.tick_s
        check = bool(slots & self._checking)
        self._checking -= slots
        return Tick(frozenset(slots), check)
