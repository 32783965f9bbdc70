"""Where md_service keeps each pair's stream in Redis, and how a reader gets a consistent book.

Every key and channel of one Kafka partition ``N`` (:func:`mdcore.partitioning.partition_of`)
shares the hash tag ``{pN}``, so on a Redis Cluster they live in one slot and one script still
writes a whole partition's window atomically. Per pair ``P`` of partition ``N`` (prefix
``bookcast`` by default; ``T`` below is ``bookcast:{pN}``):

- ``T:delta:P`` (sharded Pub/Sub channel, ``SPUBLISH``): each delta's client-facing bytes, once
  per window.
- ``T:hist:P`` (Stream): the last deltas, entry ID ``<seq>-0``, field ``d`` = the same bytes.
  The stream refuses an ID that is not above the last one, so a seq is never stored twice.
- ``T:snap:P`` (String): a full snapshot message at some seq ``S0``, rewritten every few
  windows; the history always reaches back past it.
- ``T:state:P`` (Hash): ``epoch``, ``seq`` (last published), ``xseq`` (last exchange event
  applied), ``snap_seq`` (the seq of ``snap``).
- ``T:pairs`` (Set): every pair of the partition that has a stream.
- ``T:md:<topic>`` (Hash): md_service's owner token, heartbeat, stored offset and write counter
  of the partition, and ``pair:P`` for its pairs (:mod:`md_service.claim_script`).

md_service writes all of a partition's window in one Lua script, so the keys always describe
exactly "after window S". A reader runs :data:`READ_BOOK_LUA` (atomic) and rebuilds the book at
``S`` from the snapshot plus the deltas after it (:func:`rebuild_book`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mdcore.codec import decode_delta, decode_snapshot
from mdcore.errors import IntegrityError
from mdcore.local_book import LocalBook
from mdcore.partitioning import DEFAULT_PARTITIONS, partition_of

DELTA_FIELD = b"d"


@dataclass(frozen=True, slots=True)
class RedisLayout:
    """Key and channel names under one prefix (``BOOKCAST_REDIS_PREFIX``) for a topic of
    ``partitions`` partitions (``BOOKCAST_PARTITIONS``)."""

    prefix: str = "bookcast"
    partitions: int = DEFAULT_PARTITIONS

    def __post_init__(self) -> None:
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError(f"Redis prefix {self.prefix!r}: no braces (they pick the hash slot)")
        if self.partitions < 1:
            raise ValueError(f"a topic has at least one partition, not {self.partitions}")

    def partition(self, pair: str) -> int:
        return partition_of(pair, self.partitions)

    def tag(self, partition: int) -> str:
        """The prefix every key of ``partition`` starts with: one hash slot per partition."""
        return f"{self.prefix}:{{p{partition}}}"

    def delta_channel(self, pair: str) -> str:
        return f"{self.tag(self.partition(pair))}:delta:{pair}"

    def history_key(self, pair: str) -> str:
        return f"{self.tag(self.partition(pair))}:hist:{pair}"

    def snapshot_key(self, pair: str) -> str:
        return f"{self.tag(self.partition(pair))}:snap:{pair}"

    def state_key(self, pair: str) -> str:
        return f"{self.tag(self.partition(pair))}:state:{pair}"

    def pairs_key(self, partition: int) -> str:
        return f"{self.tag(partition)}:pairs"

    def md_key(self, partition: int, topic: str) -> str:
        """md_service's hash of one partition: owner, heartbeat, offset, write counter, its pairs."""
        return f"{self.tag(partition)}:md:{topic}"

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
