"""The audit's rule: has a replica missed a message, or is it only quiet?

Pub/Sub is at-most-once, and a lost delta shows only when the next one arrives, which on a
quiet pair may be never. So every few seconds the hub reads md_service's stored position of
each replica's pair. A replica still behind the position Redis had at the *previous* audit
has lost a message: deltas in flight take milliseconds, audits are seconds apart.
"""

from __future__ import annotations

from mdcore.messages import StreamPosition


def missed_something(
    no_data: bool, pos: StreamPosition | None, mark: StreamPosition | None, stored: StreamPosition
) -> bool:
    """Whether a replica at ``pos`` must catch up, given what Redis held one audit ago (``mark``)
    and holds now (``stored``). ``no_data``: the replica has seen no stream for the pair yet.

    Another epoch is behind only if Redis has been in that other epoch for two audits.
    """
    if mark is None:
        return False
    if no_data:
        return True  # a stream exists since the last audit, and no delta came
    if pos is None:
        return False
    if pos.epoch == mark.epoch:
        return pos.seq < mark.seq
    return stored.epoch == mark.epoch
