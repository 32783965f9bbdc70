"""The Lua script that writes one closed window for many pairs, atomically and fenced.

Two fences, both checked inside the same atomic step as the writes:

1. **Partition owner.** Each Kafka partition of the window must still be owned, in Redis,
   by the token this instance wrote when the consumer group assigned it the partition
   (:mod:`md_service.claim_script`). A zombie (an instance that lost the partition without
   noticing) finds another token there and writes nothing for that partition.
2. **Expected position.** Each pair's stored ``(epoch, seq)`` must be exactly what the
   writer expects to replace (normally its own last write; nothing at all for a new pair).
   Anything else means Redis lost writes or someone else wrote: the pair is refused.

Every accepted pair is written whole: history (XADD, ID ``<seq>-0``), state hash, snapshot
when due, then PUBLISH. Each partition's consumed Kafka offset is stored only if every pair
of that partition in the window was accepted, so the stored offset never runs ahead of the
stored books: after a crash, md_service resumes exactly at "after window S".

A state-only entry (empty delta) checks the position and records the xseq without
publishing: it keeps the stored xseq current when a window changed nothing, and, sent for
every pair now and then, finds a vanished state even for a quiet pair.

Each owned partition's write counter (``writes:<p>``) goes up by one per write and comes
back in the reply: md_service keeps it outside Redis (:mod:`md_service.write_marks`) to
notice later that Redis lost writes it had confirmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from md_service.pair_stream import Position, WindowOutput
from mdcore.redis_layout import RedisLayout

ARGS_PER_PARTITION = 3
ARGS_PER_PAIR = 10
KEYS_PER_PAIR = 3
HEAD_ARGS = 3

# The script hard-codes these counts and the history field 'd' (DELTA_FIELD);
# tests/unit/md_service checks they agree.
# KEYS: md hash, then per pair state, hist, snap.
# ARGV: maxlen, pairs-set key, partition count, then per partition: partition, token,
# offset ("" = do not store); then per pair: partition index (0-based), pair, channel,
# epoch, seq, xseq, delta ("" = state only), snapshot ("" = none), expected epoch
# ("" = no state), expected seq.
# Returns {lost, refused, writes}: lost = flat {partition, current owner or ""}, refused = flat
# {pair, stored epoch or "", stored seq or ""}, writes = flat {owned partition, its write counter}.
WRITE_WINDOW_LUA = """
local md = KEYS[1]
local maxlen, pairs_key = ARGV[1], ARGV[2]
local nparts = tonumber(ARGV[3])
local owned, dirty, lost, refused, writes = {}, {}, {}, {}, {}
for i = 0, nparts - 1 do
  local a = 4 + i * 3
  local owner = redis.call('HGET', md, 'owner:' .. ARGV[a])
  if owner == ARGV[a + 1] then
    owned[i] = true
    table.insert(writes, ARGV[a])
    table.insert(writes, redis.call('HINCRBY', md, 'writes:' .. ARGV[a], 1))
  else
    table.insert(lost, ARGV[a])
    table.insert(lost, owner or '')
  end
end
local base = 4 + nparts * 3
local n = (#ARGV - base + 1) / 10
for j = 0, n - 1 do
  local a = base + j * 10
  local pi = tonumber(ARGV[a])
  if owned[pi] then
    local state, hist, snapkey = KEYS[2 + j * 3], KEYS[3 + j * 3], KEYS[4 + j * 3]
    local pair, epoch, seq, xseq = ARGV[a + 1], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
    local delta, snap, want_epoch = ARGV[a + 6], ARGV[a + 7], ARGV[a + 8]
    local cur = redis.call('HMGET', state, 'epoch', 'seq')
    local ok
    if want_epoch == '' then
      ok = not cur[1]
    else
      ok = cur[1] == want_epoch and tonumber(cur[2]) == tonumber(ARGV[a + 9])
    end
    if not ok then
      dirty[pi] = true
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
        redis.call('HSET', md, 'pair:' .. pair, ARGV[4 + pi * 3])
        redis.call('SADD', pairs_key, pair)
      else
        redis.call('HSET', state, 'epoch', epoch, 'seq', seq, 'xseq', xseq)
      end
      if delta ~= '' then redis.call('PUBLISH', ARGV[a + 2], delta) end
    end
  end
end
for i = 0, nparts - 1 do
  local a = 4 + i * 3
  if owned[i] and not dirty[i] and ARGV[a + 2] ~= '' then
    redis.call('HSET', md, 'offset:' .. ARGV[a], ARGV[a + 2])
  end
end
return {lost, refused, writes}
"""


# Periodic snapshots, written right after the window they belong to (off the publishing
# path): stored only if the partition is still ours and the pair's state is still exactly
# that seq, so a snapshot never describes another position than its snap_seq says.
# KEYS: md hash, then per pair state, snap. ARGV: pairs-set key, then per pair: partition,
# token, pair, epoch, seq, snapshot. Returns the pairs whose snapshot was stored.
WRITE_SNAPSHOTS_LUA = """
local md, pairs_key = KEYS[1], ARGV[1]
local stored = {}
local n = (#ARGV - 1) / 6
for j = 0, n - 1 do
  local a = 2 + j * 6
  local state, snapkey = KEYS[2 + j * 2], KEYS[3 + j * 2]
  local partition, pair, seq = ARGV[a], ARGV[a + 2], ARGV[a + 4]
  if redis.call('HGET', md, 'owner:' .. partition) == ARGV[a + 1] then
    local cur = redis.call('HMGET', state, 'epoch', 'seq')
    if cur[1] == ARGV[a + 3] and tonumber(cur[2]) == tonumber(seq) then
      redis.call('SET', snapkey, ARGV[a + 5])
      redis.call('HSET', state, 'snap_seq', seq)
      redis.call('HSET', md, 'pair:' .. pair, partition)
      redis.call('SADD', pairs_key, pair)
      table.insert(stored, pair)
    end
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
    layout: RedisLayout, topic: str, writes: Sequence[SnapshotWrite]
) -> tuple[list[str], list[str | bytes | int]]:
    """KEYS and ARGV of :data:`WRITE_SNAPSHOTS_LUA`."""
    keys = [md_key(layout, topic)]
    argv: list[str | bytes | int] = [layout.pairs_key]
    for w in writes:
        keys += [layout.state_key(w.pair), layout.snapshot_key(w.pair)]
        argv += [w.partition, w.token, w.pair, w.epoch, w.seq, w.snapshot]
    return keys, argv


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
    refused: dict[str, Position | None]  # pair -> the position Redis holds (None: no state)
    writes: dict[int, int] = field(default_factory=dict)  # owned partition -> its write counter now

    @property
    def clean(self) -> bool:
        return not self.lost and not self.refused


def md_key(layout: RedisLayout, topic: str) -> str:
    """The hash of md_service's per-partition owners and offsets, and each pair's partition."""
    return f"{layout.prefix}:md:{topic}"


def window_script_args(
    layout: RedisLayout,
    topic: str,
    parts: Sequence[PartitionWrite],
    outputs: Sequence[WindowOutput],
    history: int,
) -> tuple[list[str], list[str | bytes | int]]:
    """KEYS and ARGV of :data:`WRITE_WINDOW_LUA`; every output's partition must be in ``parts``."""
    index = {part.partition: i for i, part in enumerate(parts)}
    keys: list[str] = [md_key(layout, topic)]
    argv: list[str | bytes | int] = [history, layout.pairs_key, len(parts)]
    for part in parts:
        argv += [part.partition, part.token, "" if part.offset is None else part.offset]
    for out in outputs:
        keys += [layout.state_key(out.pair), layout.history_key(out.pair), layout.snapshot_key(out.pair)]
        expect_epoch, expect_seq = out.expect if out.expect is not None else ("", 0)
        argv += [
            index[out.partition],
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
    refused: dict[str, Position | None] = {}
    for i in range(0, len(refused_flat), 3):
        epoch, seq = refused_flat[i + 1].decode(), refused_flat[i + 2]
        refused[refused_flat[i].decode()] = (epoch, int(seq) if seq else 0) if epoch else None
    writes = {int(writes_flat[i]): int(writes_flat[i + 1]) for i in range(0, len(writes_flat), 2)}
    return WindowResult(lost, refused, writes)
