"""Recovery with ``since``: which deltas bring a client from its position to the replica's head.

Pure: the sources are passed in. A client at ``(epoch, S)`` is recovered only if every delta
``S+1 … head`` of the same epoch is available, from the replica's recent deltas in memory
and/or md_service's history in Redis; otherwise it gets a snapshot. A client slightly
*ahead* of this gateway's replica (it came from a faster gateway) is recovered with nothing
to replay: the deltas up to its position reach it as stale and are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable

from mdcore.messages import StreamPosition

Entry = tuple[int, bytes]  # (seq, encoded delta)


def plan_replay(
    since: StreamPosition,
    head: StreamPosition | None,
    sources: Iterable[Iterable[Entry]],
    max_ahead: int = 0,
) -> list[bytes] | None:
    """The encoded deltas after ``since`` up to ``head`` in order, or None if any one is missing."""
    if head is None or since.epoch != head.epoch:
        return None
    if since.seq >= head.seq:
        return [] if since.seq - head.seq <= max_ahead else None
    have: dict[int, bytes] = {}
    for source in sources:
        for seq, raw in source:
            if since.seq < seq <= head.seq:
                have[seq] = raw
    if len(have) != head.seq - since.seq:
        return None
    return [have[seq] for seq in range(since.seq + 1, head.seq + 1)]


def replay_costs_more(missing: int, recent: Iterable[Entry], snapshot_bytes: int | None) -> bool:
    """Whether sending ``missing`` deltas would cost more than one snapshot.

    A client far behind would otherwise make the gateway read, parse and send more bytes
    than the snapshot it can send instead (which is encoded once per pair and seq and shared
    by every subscriber of the window): under a reconnect storm those history reads were a
    sixth of the gateway's time. The deltas' size is that of the recent ones; with no
    snapshot size known yet, or no recent delta to judge by, the replay is tried.
    """
    sizes = [len(raw) for _seq, raw in recent]
    if not sizes or snapshot_bytes is None:
        return False
    return missing * (sum(sizes) / len(sizes)) > snapshot_bytes


def chunk_frames(encoded: list[bytes], max_bytes: int) -> list[list[bytes]]:
    """Split messages into runs of at most ``max_bytes`` (a lone larger message is its own run)."""
    runs: list[list[bytes]] = []
    run: list[bytes] = []
    size = 0
    for message in encoded:
        if run and size + len(message) + 1 > max_bytes:
            runs.append(run)
            run, size = [], 0
        run.append(message)
        size += len(message) + 1
    if run:
        runs.append(run)
    return runs
