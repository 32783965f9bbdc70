"""The three-way rule on every stream message: older -> skip, next -> apply, jump -> resync.

A stream position is ``(epoch, seq)``. The epoch names one continuous stream; seqs are
only comparable inside it, so a different epoch is always a jump, never "older".
"""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    STALE = "stale"  # already applied (seq <= last): ignore
    NEXT = "next"  # exactly last + 1 in the same epoch: apply
    GAP = "gap"  # a jump or a new epoch: the local state cannot be trusted, resync


_STALE, _NEXT, _GAP = Verdict.STALE, Verdict.NEXT, Verdict.GAP  # bound once: ``Verdict.X`` costs a lookup


def classify(last_epoch: str | None, last_seq: int, epoch: str, seq: int) -> Verdict:
    """Where a message at ``(epoch, seq)`` stands relative to a book at ``(last_epoch, last_seq)``.

    Called once per delta by the gateway and by every client, so it stays a few compares.
    """
    if epoch != last_epoch:
        return _GAP
    if seq <= last_seq:
        return _STALE
    if seq == last_seq + 1:
        return _NEXT
    return _GAP
