"""A warm takeover: continue a partition's stored streams from books kept while following. Pure.

A follower (a standby, or an instance another one took the partition from) has applied the
partition's events to its own books, cutting its own windows, which it never wrote. When it
takes the partition over, each pair must continue at exactly the stored ``S+1``, with a
first delta that takes a reader from the *stored* book at ``S`` to the follower's book
(:meth:`md_service.pair_stream.PairStream.continue_from`). That is only right if the
follower's books hold every event the stored ones hold: it has read the partition at least
as far as the stored offset, has a book of every stored pair, and none is behind the stored
``xseq``. Otherwise it takes the partition over cold, exactly as a consumer-group assignment
does: books restored from Redis, reading from the stored offset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from md_service.pair_stream import PairStream
from mdcore.local_book import LocalBook
from mdcore.redis_layout import StoredState

Stored = Mapping[str, tuple[StoredState | None, LocalBook | None]]  # pair -> what Redis holds


def why_cold(
    streams: Mapping[str, PairStream],
    position: int | None,
    cold: bool,
    stored_offset: int | None,
    stored: Stored,
) -> str | None:
    """Why the follower's books cannot continue the stored streams; None if they can."""
    if cold:
        return "its books missed events of a pair while following"
    if stored_offset is not None and (position is None or position < stored_offset):
        return f"read up to offset {position}, behind the stored {stored_offset}"
    for pair, (state, local) in stored.items():
        if state is None:
            continue
        if local is None:
            return f"{pair}: the stored stream does not add up"
        stream = streams.get(pair)
        if stream is None:
            return f"{pair}: no book of it"
        if stream.xseq < state.xseq:
            return f"{pair}: at xseq {stream.xseq}, behind the stored {state.xseq}"
    return None


def continue_warm(streams: Mapping[str, PairStream], stored: Stored, epoch: Callable[[], str]) -> list[str]:
    """Make every stream continue what Redis stores (check :func:`why_cold` first).

    A stored pair continues at its stored seq from our book; a pair Redis holds nothing of
    starts a new stream (the whole book, as any new pair). Returns the pairs started anew.
    """
    fresh = []
    for pair, stream in streams.items():
        state, local = stored.get(pair, (None, None))
        if state is not None and local is not None:
            stream.continue_from(state.epoch, state.seq, state.xseq, state.snap_seq, local.book)
        else:
            stream.restart_epoch(epoch(), None)
            fresh.append(pair)
    return fresh
