"""Keeping the garbage collector from pausing md_service's loop."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Take everything start-up created out of the garbage collector's way.

    A full collection walks every tracked object, and with the Kafka, Redis and other
    libraries loaded that is a pause of 10-20 ms: a late window. md_service's steady state
    makes almost no cyclic garbage (its objects die by reference counting), so the start-up
    heap is frozen and the young generation is collected less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 1_000)
