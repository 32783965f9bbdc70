"""The Lua script that writes one partition's closed window, atomically and fenced.

A window is written as one script call per Kafka partition: every key of a partition shares
its hash tag (:mod:`mdcore.redis_layout`), so on a Redis Cluster each call runs on the one
node that owns that slot, and the partition (not the whole window) is the unit of atomicity.
md_service sends a window's calls together in one pipeline.

Two fences, both checked inside the same atomic step as the writes:

1. **Partition owner.** The partition must still be owned, in Redis, by the token this
   instance wrote when the consumer group assigned it the partition
   (:mod:`md_service.claim_script`). A zombie (an instance that lost the partition without
   noticing) finds another token there and writes nothing.
2. **Expected position.** Each pair's stored ``(epoch, seq)`` must be exactly what the
   writer expects to replace (normally its own last write; nothing at all for a new pair).
   Anything else means Redis lost writes or someone else wrote: the pair is refused.

Every accepted pair is written whole: history (XADD, ID ``<seq>-0``), state hash, snapshot
when due, then SPUBLISH (sharded Pub/Sub: the channel's slot is the partition's). The
partition's consumed Kafka offset is stored only if every pair of it in the window was
accepted, so the stored offset never runs ahead of the stored books: after a crash,
md_service resumes exactly at "after window S".

A state-only entry (empty delta) checks the position and records the xseq without
publishing: it keeps the stored xseq current when a window changed nothing, and, sent for
every pair now and then, finds a vanished state even for a quiet pair.

The partition's write counter (``writes:<p>``) goes up by one per write and comes back in
the reply: md_service keeps it outside Redis (:mod:`md_service.write_marks`) to notice later
that Redis lost writes it had confirmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from md_service.pair_stream import WindowOutput
from mdcore.messages import StreamPosition
from mdcore.redis_layout import RedisLayout

# The script hard-codes the history field 'd' (mdcore.redis_layout.DELTA_FIELD).
# One call writes one partition (one hash slot).
# KEYS: the partition's md hash, its pairs set, then per pair state, hist, snap.
# ARGV: maxlen, partition, token, offset ("" = do not store); then per pair: pair, channel,
# epoch, seq, xseq, delta ("" = state only), snapshot ("" = none), expected epoch
# ("" = no state), expected seq.
# Returns {lost, refused, writes}: lost = {partition, current owner or ""} if the token is not
# the owner (then nothing is written), refused = flat {pair, stored epoch or "", stored seq or ""},
# writes = {partition, its write counter} when owned.
WRITE_WINDOW_LUA = """
local md, pairs_key = KEYS[1], KEYS[2]
local maxlen, partition, token, offset = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local owner = redis.call('HGET', md, 'owner:' .. partition)
if owner ~= token then return {{partition, owner or ''}, {}, {}} end
local writes = {partition, redis.call('HINCRBY', md, 'writes:' .. partition, 1)}
local refused, dirty = {}, false
local n = (#ARGV - 4) / 9
for j = 0, n - 1 do
  local a = 5 + j * 9
  local state, hist, snapkey = KEYS[3 + j * 3], KEYS[4 + j * 3], KEYS[5 + j * 3]
  local pair, epoch, seq, xseq = ARGV[a], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local delta, snap, want_epoch = ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
  local cur = redis.call('HMGET', state, 'epoch', 'seq')
  local ok
  if want_epoch == '' then
    ok = not cur[1]
  else
    ok = cur[1] == want_epoch and tonumber(cur[2]) == tonumber(ARGV[a + 8])
  end
  if not ok then
    dirty = true
    table.insert(refused, pair)
    table.insert(refused, cur[1] or '')
    table.insert(refused, cur[2] or '')
  else
    if delta ~= '' then
      if want_epoch ~= epoch then redis.call('DEL', hist) end
      redis.call('XADD', hist, 'MAXLEN', '~', maxlen, seq .. '-0', 'd', delta)
    end
    if snap ~= '' then
      redis.call('SET', snapkey, snap)
      redis.call('HSET', state, 'epoch', epoch, 'seq', seq, 'xseq', xseq, 'snap_seq', seq)
      redis.call('HSET', md, 'pair:' .. pair, partition)
      redis.call('SADD', pairs_key, pair)
    else
      redis.call('HSET', state, 'epoch', epoch, 'seq', seq, 'xseq', xseq)
    end
    if delta ~= '' then redis.call('SPUBLISH', ARGV[a + 1], delta) end
  end
end
if not dirty and offset ~= '' then
  redis.call('HSET', md, 'offset:' .. partition, offset)
end
return {{}, refused, writes}
"""


# Periodic snapshots, written right after the window they belong to (off the publishing
# path): stored only if the partition is still ours and the pair's state is still exactly
# that seq, so a snapshot never describes another position than its snap_seq says.
# One call per partition. KEYS: the partition's md hash, its pairs set, then per pair state,
# snap. ARGV: partition, token, then per pair: pair, epoch, seq, snapshot.
# Returns the pairs whose snapshot was stored.
WRITE_SNAPSHOTS_LUA = """
local md, pairs_key = KEYS[1], KEYS[2]
local partition = ARGV[1]
if redis.call('HGET', md, 'owner:' .. partition) ~= ARGV[2] then return {} end
local stored = {}
local n = (#ARGV - 2) / 4
for j = 0, n - 1 do
  local a = 3 + j * 4
  local state, snapkey = KEYS[3 + j * 2], KEYS[4 + j * 2]
  local pair, seq = ARGV[a], ARGV[a + 2]
  local cur = redis.call('HMGET', state, 'epoch', 'seq')
  if cur[1] == ARGV[a + 1] and tonumber(cur[2]) == tonumber(seq) then
    redis.call('SET', snapkey, ARGV[a + 3])
    redis.call('HSET', state, 'snap_seq', seq)
    redis.call('HSET', md, 'pair:' .. pair, partition)
    redis.call('SADD', pairs_key, pair)
    table.insert(stored, pair)
  end
end
return stored
"""


@dataclass(frozen=True, slots=True)
class SnapshotWrite:
    pair: str
    partition: int
    token: str
    epoch: str
    seq: int
    snapshot: bytes


def snapshot_script_args(
    layout: RedisLayout, topic: str, partition: int, token: str, writes: Sequence[SnapshotWrite]
) -> tuple[list[str], list[str | bytes | int]]:
    """KEYS and ARGV of :data:`WRITE_SNAPSHOTS_LUA` for one partition's ``writes``."""
    keys = [layout.md_key(partition, topic), layout.pairs_key(partition)]
    argv: list[str | bytes | int] = [partition, token]
    for w in writes:
        _check_home(layout, w.pair, w.partition)
        keys += [layout.state_key(w.pair), layout.snapshot_key(w.pair)]
        argv += [w.pair, w.epoch, w.seq, w.snapshot]
    return keys, argv


def _check_home(layout: RedisLayout, pair: str, partition: int) -> None:
    """A pair's keys carry its computed partition's hash tag: a stream elsewhere is a bug."""
    if layout.partition(pair) != partition:
        raise ValueError(f"{pair} lives in partition {layout.partition(pair)}, not {partition}")


@dataclass(frozen=True, slots=True)
class PartitionWrite:
    """One partition's part of a window: its owner token and the offset to store (None: keep)."""

    partition: int
    token: str
    offset: int | None


@dataclass(frozen=True, slots=True)
class WindowResult:
    """Which partitions were lost to another owner, which pairs were refused, the write counters."""

    lost: dict[int, str]  # partition -> the owner token Redis holds ("" = none: Redis lost it)
    refused: dict[str, StreamPosition | None]  # pair -> the position Redis holds (None: no state)
    writes: dict[int, int] = field(default_factory=dict)  # owned partition -> its write counter now
    # partitions not written because their Redis node could not be reached (cluster): retried
    # with the next window, while the partitions on healthy nodes went on
    failed: set[int] = field(default_factory=set)

    @property
    def clean(self) -> bool:
        return not self.lost and not self.refused and not self.failed


def window_script_args(
    layout: RedisLayout,
    topic: str,
    part: PartitionWrite,
    outputs: Sequence[WindowOutput],
    history: int,
) -> tuple[list[str], list[str | bytes | int]]:
    """KEYS and ARGV of :data:`WRITE_WINDOW_LUA` for one partition; every output must be of it."""
    p = part.partition
    keys: list[str] = [layout.md_key(p, topic), layout.pairs_key(p)]
    argv: list[str | bytes | int] = [history, p, part.token, "" if part.offset is None else part.offset]
    for out in outputs:
        if out.partition != p:
            raise ValueError(f"{out.pair}'s output is of partition {out.partition}, not {p}")
        _check_home(layout, out.pair, p)
        keys += [layout.state_key(out.pair), layout.history_key(out.pair), layout.snapshot_key(out.pair)]
        expect_epoch, expect_seq = out.expect if out.expect is not None else ("", 0)
        argv += [
            out.pair,
            layout.delta_channel(out.pair),
            out.epoch,
            out.seq,
            out.xseq,
            out.delta,
            out.snapshot or b"",
            expect_epoch,
            expect_seq,
        ]
    return keys, argv


def parse_result(reply: Sequence[Sequence[Any]]) -> WindowResult:
    """The script's reply as a :class:`WindowResult`."""
    lost_flat, refused_flat, writes_flat = reply
    lost = {int(lost_flat[i]): lost_flat[i + 1].decode() for i in range(0, len(lost_flat), 2)}
    refused: dict[str, StreamPosition | None] = {}
    for i in range(0, len(refused_flat), 3):
        epoch, seq = refused_flat[i + 1].decode(), refused_flat[i + 2]
        refused[refused_flat[i].decode()] = StreamPosition(epoch, int(seq) if seq else 0) if epoch else None
    writes = {int(writes_flat[i]): int(writes_flat[i + 1]) for i in range(0, len(writes_flat), 2)}
    return WindowResult(lost, refused, writes)


def merge_results(results: Sequence[WindowResult]) -> WindowResult:
    """One window's result from its partitions' results."""
    merged = WindowResult({}, {}, {})
    for r in results:
        merged.lost.update(r.lost)
        merged.refused.update(r.refused)
        merged.writes.update(r.writes)
        merged.failed.update(r.failed)
    return merged
