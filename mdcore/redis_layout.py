"""Where md_service keeps each pair's stream in Redis, and how a reader gets a consistent book.

Per pair ``P`` (prefix ``bookcast`` by default):

- ``{prefix}:delta:P`` (Pub/Sub channel): each delta's client-facing bytes, once per window.
- ``{prefix}:hist:P`` (Stream): the last deltas, entry ID ``<seq>-0``, field ``d`` = the same
  bytes. The stream refuses an ID that is not above the last one, so a seq is never stored twice.
- ``{prefix}:snap:P`` (String): a full snapshot message at some seq ``S0``, rewritten every few
  windows; the history always reaches back past it.
- ``{prefix}:state:P`` (Hash): ``epoch``, ``seq`` (last published), ``xseq`` (last exchange event
  applied), ``snap_seq`` (the seq of ``snap``).
- ``{prefix}:pairs`` (Set): every pair that has a stream.

md_service writes all of a window's keys in one MULTI/EXEC, so they always describe exactly
"after window S". A reader runs :data:`READ_BOOK_LUA` (atomic) and rebuilds the book at ``S``
from the snapshot plus the deltas after it (:func:`rebuild_book`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mdcore.codec import decode_delta, decode_snapshot
from mdcore.errors import IntegrityError
from mdcore.local_book import LocalBook

DELTA_FIELD = b"d"


@dataclass(frozen=True, slots=True)
class RedisLayout:
    """Key and channel names under one prefix (``BOOKCAST_REDIS_PREFIX``)."""

    prefix: str = "bookcast"

    def delta_channel(self, pair: str) -> str:
        return f"{self.prefix}:delta:{pair}"

    def history_key(self, pair: str) -> str:
        return f"{self.prefix}:hist:{pair}"

    def snapshot_key(self, pair: str) -> str:
        return f"{self.prefix}:snap:{pair}"

    def state_key(self, pair: str) -> str:
        return f"{self.prefix}:state:{pair}"

    @property
    def pairs_key(self) -> str:
        return f"{self.prefix}:pairs"

    def channel_prefix(self) -> str:
        return f"{self.prefix}:delta:"

    def book_keys(self, pair: str) -> list[str]:
        """KEYS argument of :data:`READ_BOOK_LUA`."""
        return [self.state_key(pair), self.snapshot_key(pair), self.history_key(pair)]


# KEYS: state, snap, hist. Returns {state fields flat list, snapshot bytes, [[id, [field, value]], ...]}
# with every history entry after the snapshot's seq, all read in one atomic step.
READ_BOOK_LUA = """
local state = redis.call('HGETALL', KEYS[1])
local snap = redis.call('GET', KEYS[2])
if not snap then return {state, false, {}} end
local snap_seq = redis.call('HGET', KEYS[1], 'snap_seq')
local after = {}
if snap_seq then
  after = redis.call('XRANGE', KEYS[3], '(' .. snap_seq .. '-0', '+')
end
return {state, snap, after}
"""


@dataclass(frozen=True, slots=True)
class StoredState:
    """The hash ``{prefix}:state:P`` decoded."""

    epoch: str
    seq: int
    xseq: int
    snap_seq: int


def parse_state(flat: Sequence[bytes]) -> StoredState | None:
    """Decode HGETALL's flat ``[k, v, k, v, ...]`` reply; None if the pair has no state."""
    if not flat:
        return None
    fields = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
    try:
        return StoredState(fields["epoch"], int(fields["seq"]), int(fields["xseq"]), int(fields["snap_seq"]))
    except (KeyError, ValueError) as exc:
        raise IntegrityError("?", f"malformed state hash {fields!r}: {exc}") from None


def rebuild_book(pair: str, reply: Sequence[object]) -> tuple[StoredState, LocalBook] | None:
    """Book at the stored seq from a :data:`READ_BOOK_LUA` reply; None if the pair has no stream.

    Every delta after the snapshot is applied with the sequence rule, and the checksum of the
    book at the end is verified once (not after every delta: the last delta's checksum covers
    the whole result, and verifying each one made a reload cost a checksum per history entry),
    so a reply that does not add up raises :class:`IntegrityError` instead of yielding a wrong book.
    """
    flat_state, snap_bytes, entries = reply  # type: ignore[misc]
    state = parse_state(flat_state)  # type: ignore[arg-type]
    if state is None or not snap_bytes:
        return None
    local = LocalBook(pair)
    local.load_snapshot(decode_snapshot(snap_bytes), verify=not entries)  # type: ignore[arg-type]
    for _entry_id, fields in entries:  # type: ignore[attr-defined]
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        local.apply_delta(decode_delta(values[DELTA_FIELD]), verify=False)
    if entries:
        local.verify()
    if local.epoch != state.epoch or local.seq != state.seq:
        raise IntegrityError(
            pair, f"history ends at {local.epoch}/{local.seq} but state says {state.epoch}/{state.seq}"
        )
    return state, local
