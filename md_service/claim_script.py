"""Taking a Kafka partition over in Redis: the owner token that fences the previous owner.

When the consumer group assigns a partition, md_service writes a fresh owner token for it
into the partition's hash ``{prefix}:{pN}:md:{topic}`` (one per partition, in the partition's
hash slot, so the window script can check it) and, in the same atomic step, reads the offset stored with the
last window written for it and the pairs known to live in it. From then on every window
write checks the token (:mod:`md_service.window_script`), so an instance that still thinks
it owns the partition (a zombie after a long pause, or one on the wrong side of a network
split) can no longer write anything for it.

Re-claiming (after Redis lost the hash) only takes a partition nobody holds, so two
instances that both noticed the loss cannot both win.

A claim also stores a first heartbeat (``beat:<p>``, Redis' clock) and returns the previous
owner. Besides the group's assignment (``force``), a partition is claimed when its writer is
gone: ``takeover`` takes it only if its owner is still the one the candidate saw and it is
released or silent long enough (:mod:`md_service.takeover`), checked in the same atomic step.

A claim also returns each claimed partition's write counter (``writes:<p>``, incremented by
every window write) and the id of the partition's Redis dataset (``dataset``, made by the
first claim of the partition ever; a cluster shard that lost everything loses it too), which
:mod:`md_service.write_marks` compares with what this instance saw last.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# KEYS: the partition's md hash. ARGV: token, mode, a new dataset id (kept only if the hash has
# none), dead_after_ms, then per partition (md_service sends one per call: one hash slot):
# partition, expected owner ("" unless mode is takeover).
# Modes: "force" (the group assigned it), "if-free" (nobody owns it), "takeover" (the owner is
# still the expected one and it is released, never beat, or beat dead_after_ms ago or more).
# A claim stores the token and a first beat (Redis' clock, ms).
# Returns {claimed partitions, offsets (same order, "" = none), pairs flat {pair, partition},
# dataset id, write counters (same order as claimed, "0" = none), previous owners (same order)}.
CLAIM_LUA = """
local md = KEYS[1]
local token, mode, dead = ARGV[1], ARGV[2], tonumber(ARGV[4])
redis.call('HSETNX', md, 'dataset', ARGV[3])
local dataset = redis.call('HGET', md, 'dataset')
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local wanted, claimed, offsets, pairs, writes, previous = {}, {}, {}, {}, {}, {}
for i = 5, #ARGV, 2 do
  local p = ARGV[i]
  local owner = redis.call('HGET', md, 'owner:' .. p)
  local ok = mode == 'force'
  if mode == 'if-free' then
    ok = not owner
  elseif mode == 'takeover' then
    ok = owner == ARGV[i + 1]
    if ok and string.sub(owner, 1, 9) ~= 'released/' then
      local beat = redis.call('HGET', md, 'beat:' .. p)
      ok = (not beat) or tonumber(now) - tonumber(beat) >= dead
    end
  end
  if ok then
    redis.call('HSET', md, 'owner:' .. p, token, 'beat:' .. p, now)
    wanted[p] = true
    table.insert(claimed, p)
    table.insert(offsets, redis.call('HGET', md, 'offset:' .. p) or '')
    table.insert(writes, redis.call('HGET', md, 'writes:' .. p) or '0')
    table.insert(previous, owner or '')
  end
end
local all = redis.call('HGETALL', md)
for i = 1, #all, 2 do
  local name = all[i]
  if string.sub(name, 1, 5) == 'pair:' and wanted[all[i + 1]] then
    table.insert(pairs, string.sub(name, 6))
    table.insert(pairs, all[i + 1])
  end
end
return {claimed, offsets, pairs, dataset, writes, previous}
"""

# The same reading as a claim, without claiming: where a follower starts (offsets, pairs).
# KEYS: the partition's md hash. ARGV: the partition. Returns the claim's reply shape (dataset "",
# no counters).
READ_CLAIM_LUA = """
local md = KEYS[1]
local wanted, parts, offsets, pairs, writes, previous = {}, {}, {}, {}, {}, {}
for i = 1, #ARGV do
  local p = ARGV[i]
  wanted[p] = true
  table.insert(parts, p)
  table.insert(offsets, redis.call('HGET', md, 'offset:' .. p) or '')
  table.insert(writes, '0')
  table.insert(previous, redis.call('HGET', md, 'owner:' .. p) or '')
end
local all = redis.call('HGETALL', md)
for i = 1, #all, 2 do
  local name = all[i]
  if string.sub(name, 1, 5) == 'pair:' and wanted[all[i + 1]] then
    table.insert(pairs, string.sub(name, 6))
    table.insert(pairs, all[i + 1])
  end
end
return {parts, offsets, pairs, '', writes, previous}
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """What a claim found: each claimed partition's stored offset (None: none) and its pairs."""

    offsets: dict[int, int | None]
    pairs: dict[str, int]  # pair -> partition, for the claimed partitions
    datasets: dict[int, str] = field(default_factory=dict)  # claimed partition -> its dataset's id
    writes: dict[int, int] = field(default_factory=dict)  # claimed partition -> its write counter
    previous: dict[int, str] = field(default_factory=dict)  # claimed partition -> its owner before ("" none)


def new_dataset_id() -> str:
    """A candidate id for a Redis dataset nobody claimed in yet (16 hex digits)."""
    return secrets.token_hex(8)


def claim_args(
    token: str,
    partitions: Sequence[int] | Mapping[int, str],
    mode: str,
    dataset: str,
    dead_after_ms: int = 0,
) -> list[str | int]:
    """ARGV of :data:`CLAIM_LUA`; ``partitions`` maps each to its expected owner in mode takeover."""
    expected = partitions if isinstance(partitions, Mapping) else dict.fromkeys(partitions, "")
    args: list[str | int] = [token, mode, dataset, dead_after_ms]
    for p, owner in expected.items():
        args += [p, owner]
    return args


def parse_claim(reply: Sequence[Any]) -> Claim:
    """One partition hash's reply (the scripts run once per partition: one hash slot each)."""
    claimed, offsets, pairs_flat, dataset, writes, previous = reply
    dataset_id = dataset.decode() if isinstance(dataset, bytes) else str(dataset)
    return Claim(
        {int(p): (int(off) if off else None) for p, off in zip(claimed, offsets, strict=True)},
        {pairs_flat[i].decode(): int(pairs_flat[i + 1]) for i in range(0, len(pairs_flat), 2)},
        {int(p): dataset_id for p in claimed} if dataset_id else {},
        {int(p): int(n) for p, n in zip(claimed, writes, strict=True)},
        {int(p): owner.decode() for p, owner in zip(claimed, previous, strict=True)},
    )


def merge_claims(claims: Sequence[Claim]) -> Claim:
    """The claim of several partitions from each partition's own."""
    merged = Claim({}, {})
    for c in claims:
        merged.offsets.update(c.offsets)
        merged.pairs.update(c.pairs)
        merged.datasets.update(c.datasets)
        merged.writes.update(c.writes)
        merged.previous.update(c.previous)
    return merged
