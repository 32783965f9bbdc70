"""Ops waiting for their turn on the connection, in order, with one resync per pair at most.

The client sends ops paced (:mod:`clients.pacing`), so they can wait here for a while; a
pair that is asked for again meanwhile (its next delta, the periodic check) must not queue
a second resync that would only spend the gateway's op budget.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from mdcore.messages import ClientOp, Resync


class Outbox:
    """A FIFO of ops; a resync for a pair already waiting here is not queued twice."""

    __slots__ = ("_ops", "_resyncs")

    def __init__(self) -> None:
        self._ops: deque[ClientOp] = deque()
        self._resyncs: set[str] = set()

    def __len__(self) -> int:
        return len(self._ops)

    def extend(self, ops: Iterable[ClientOp]) -> None:
        """Queue ``ops`` in order; a resync for a pair that already has one waiting is dropped."""
        for op in ops:
            if isinstance(op, Resync):
                if op.pair in self._resyncs:
                    continue
                self._resyncs.add(op.pair)
            self._ops.append(op)

    def has_resync(self, pair: str) -> bool:
        return pair in self._resyncs

    def add_resync(self, pair: str, request_id: int) -> None:
        self.extend([Resync(pair, request_id)])

    def pop(self) -> ClientOp | None:
        """The oldest op, or None when empty."""
        if not self._ops:
            return None
        op = self._ops.popleft()
        if isinstance(op, Resync):
            self._resyncs.discard(op.pair)
        return op

    def take_all(self) -> list[ClientOp]:
        ops = list(self._ops)
        self.clear()
        return ops

    def clear(self) -> None:
        self._ops.clear()
        self._resyncs.clear()

    def drop_resyncs(self, pairs: Iterable[str]) -> None:
        """Forget the queued resyncs of ``pairs`` (no longer followed)."""
        gone = self._resyncs.intersection(pairs)
        if gone:
            self._ops = deque(op for op in self._ops if not (isinstance(op, Resync) and op.pair in gone))
            self._resyncs -= gone
