"""Taking a Kafka partition over in Redis: the owner token that fences the previous owner.

When the consumer group assigns a partition, md_service writes a fresh owner token for it
into ``{prefix}:md:{topic}`` and, in the same atomic step, reads the offset stored with the
last window written for it and the pairs known to live in it. From then on every window
write checks the token (:mod:`md_service.window_script`), so an instance that still thinks
it owns the partition (a zombie after a long pause, or one on the wrong side of a network
split) can no longer write anything for it.

Re-claiming (after Redis lost the hash) only takes a partition nobody holds, so two
instances that both noticed the loss cannot both win.

A claim also returns each claimed partition's write counter (``writes:<p>``, incremented by
every window write) and the id of this Redis dataset (``dataset``, made by the first claim
ever), which :mod:`md_service.write_marks` compares with what this instance saw last.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# KEYS: md hash. ARGV: token, "force" or "if-free", a new dataset id (kept only if the hash
# has none), partitions...
# Returns {claimed partitions, offsets (same order, "" = none), pairs flat {pair, partition},
# dataset id, write counters (same order as claimed, "0" = none)}.
CLAIM_LUA = """
local md = KEYS[1]
local token, force = ARGV[1], ARGV[2] == 'force'
redis.call('HSETNX', md, 'dataset', ARGV[3])
local dataset = redis.call('HGET', md, 'dataset')
local wanted, claimed, offsets, pairs, writes = {}, {}, {}, {}, {}
for i = 4, #ARGV do
  local p = ARGV[i]
  local field = 'owner:' .. p
  if force or not redis.call('HGET', md, field) then
    redis.call('HSET', md, field, token)
    wanted[p] = true
    table.insert(claimed, p)
    table.insert(offsets, redis.call('HGET', md, 'offset:' .. p) or '')
    table.insert(writes, redis.call('HGET', md, 'writes:' .. p) or '0')
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
return {claimed, offsets, pairs, dataset, writes}
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """What a claim found: each claimed partition's stored offset (None: none) and its pairs."""

    offsets: dict[int, int | None]
    pairs: dict[str, int]  # pair -> partition, for the claimed partitions
    dataset: str = ""  # the Redis dataset's id
    writes: dict[int, int] = field(default_factory=dict)  # claimed partition -> its write counter


def new_dataset_id() -> str:
    """A candidate id for a Redis dataset nobody claimed in yet (16 hex digits)."""
    return secrets.token_hex(8)


def claim_args(token: str, partitions: Sequence[int], force: bool, dataset: str) -> list[str | int]:
    return [token, "force" if force else "if-free", dataset, *partitions]


def parse_claim(reply: Sequence[Any]) -> Claim:
    claimed, offsets, pairs_flat, dataset, writes = reply
    return Claim(
        {int(p): (int(off) if off else None) for p, off in zip(claimed, offsets, strict=True)},
        {pairs_flat[i].decode(): int(pairs_flat[i + 1]) for i in range(0, len(pairs_flat), 2)},
        dataset.decode(),
        {int(p): int(n) for p, n in zip(claimed, writes, strict=True)},
    )
