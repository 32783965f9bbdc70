"""Heartbeats, clean release and the watch on other writers: the Lua side of partition leases.

A writer's owner token (:mod:`md_service.claim_script`) says who may write a partition; these
scripts say whether that writer is still there:

- ``BEAT_LUA``: every ``BOOKCAST_MD_HEARTBEAT_MS`` a writer stores Redis' clock (ms) in
  ``beat:<p>`` of each partition it still owns (fenced by the token, like a window write) and
  learns at once about any it lost;
- ``RELEASE_LUA``: a clean stop replaces each token it holds by a release marker
  (:func:`md_service.takeover.released_marker`): a standby or another instance takes the
  partition without waiting for the beat to age, and no window of the old token can land;
- ``WATCH_LUA``: a candidate reads owner, beat and Redis' clock of the partitions it could
  take over, in one atomic step, for :class:`md_service.takeover.TakeoverWatch`;
  ``CLAIMED_LUA`` lists the partitions that have an owner at all (those are the only ones a
  writer can be gone from), now and then, so adopting never waits for Kafka's metadata.

Redis' clock is used throughout, so no two hosts' clocks are ever compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from md_service.takeover import OwnerView

_NOW_MS = """local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
"""  # Redis' clock in ms, as a string of digits

# KEYS: the partition's md hash (one call per partition). ARGV: per partition: partition, token.
# Returns flat {lost partition, its owner or ""}.
BEAT_LUA = (
    "local md = KEYS[1]\n"
    + _NOW_MS
    + """local lost = {}
for i = 1, #ARGV, 2 do
  local owner = redis.call('HGET', md, 'owner:' .. ARGV[i])
  if owner == ARGV[i + 1] then
    redis.call('HSET', md, 'beat:' .. ARGV[i], now)
  else
    table.insert(lost, ARGV[i])
    table.insert(lost, owner or '')
  end
end
return lost
"""
)

# KEYS: the partition's md hash (one call per partition). ARGV: per partition: partition, token.
# Returns the partitions released.
RELEASE_LUA = """
local md = KEYS[1]
local released = {}
for i = 1, #ARGV, 2 do
  if redis.call('HGET', md, 'owner:' .. ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', md, 'owner:' .. ARGV[i], 'released/' .. ARGV[i + 1])
    table.insert(released, ARGV[i])
  end
end
return released
"""

# KEYS: the partition's md hash (one call per partition). ARGV: partitions.
# Returns {now (ms), flat {owner or "", beat or ""} per partition}.
WATCH_LUA = (
    "local md = KEYS[1]\n"
    + _NOW_MS
    + """local seen = {}
for i = 1, #ARGV do
  table.insert(seen, redis.call('HGET', md, 'owner:' .. ARGV[i]) or '')
  table.insert(seen, redis.call('HGET', md, 'beat:' .. ARGV[i]) or '')
end
return {now, seen}
"""
)


# KEYS: the partition's md hash (one call per partition). Returns the partition if it has (or
# had) an owner: those are the only ones a writer may be gone from.
CLAIMED_LUA = """
local found = {}
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(name, 1, 6) == 'owner:' then table.insert(found, string.sub(name, 7)) end
end
return found
"""


def token_args(tokens: Mapping[int, str]) -> list[str | int]:
    """ARGV of :data:`BEAT_LUA` and :data:`RELEASE_LUA`: partition, token, partition, token, …"""
    args: list[str | int] = []
    for p, token in tokens.items():
        args += [p, token]
    return args


def parse_lost(reply: Sequence[bytes]) -> dict[int, str]:
    """:data:`BEAT_LUA`'s reply: partition -> the owner Redis holds instead ("" = none)."""
    return {int(reply[i]): reply[i + 1].decode() for i in range(0, len(reply), 2)}


def parse_watch(partitions: Sequence[int], reply: Sequence[Any]) -> dict[int, OwnerView]:
    """:data:`WATCH_LUA`'s reply as one :class:`OwnerView` per partition."""
    now_raw, flat = reply
    now = int(now_raw)
    views = {}
    for i, p in enumerate(partitions):
        owner, beat = flat[2 * i].decode(), flat[2 * i + 1]
        views[p] = OwnerView(owner, int(beat) if beat else None, now)
    return views
