"""The Lua script that writes one closed window for many pairs, atomically and fenced.

For each pair it first checks that the stored state is exactly the one this instance
published last: same epoch and ``seq - 1`` (or no state at all for ``seq == 1`` of a new
epoch). A pair that fails the check (another instance took it over, or Redis lost its
state) is reported and nothing is written for it; every other pair is written in the
same atomic step: PUBLISH, XADD (history, ID ``<seq>-0``), HSET state, optional SET
snapshot, SADD pairs. So the state in Redis is always exactly "after window S", and two
instances can never both publish one seq.
"""

from __future__ import annotations

from collections.abc import Sequence

from md_service.pair_stream import WindowOutput
from mdcore.redis_layout import RedisLayout

ARGS_PER_PAIR = 7
KEYS_PER_PAIR = 3

# The script hard-codes ARGS_PER_PAIR (7), KEYS_PER_PAIR (3) and the history field 'd'
# (DELTA_FIELD); tests/unit/md_service checks they agree.
# KEYS: per pair state, hist, snap. ARGV: maxlen, pairs-set key, then per pair
# pair, channel, epoch, seq, xseq, delta, snapshot ("" if none).
# Returns a flat list {pair, reason, ...} of the pairs NOT written.
WRITE_WINDOW_LUA = """
local maxlen = ARGV[1]
local pairs_key = ARGV[2]
local rejected = {}
local n = (#ARGV - 2) / 7
for i = 0, n - 1 do
  local a = 3 + i * 7
  local k = i * 3
  local pair, channel, epoch = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local seq = tonumber(ARGV[a + 3])
  local cur = redis.call('HMGET', KEYS[k + 1], 'epoch', 'seq')
  local ok
  if cur[1] then
    ok = (cur[1] == epoch and tonumber(cur[2]) == seq - 1)
  else
    ok = (seq == 1)
  end
  if not ok then
    table.insert(rejected, pair)
    table.insert(rejected, cur[1] and ('stored ' .. cur[1] .. '/' .. cur[2]) or 'no state')
  else
    if seq == 1 then redis.call('DEL', KEYS[k + 2]) end
    redis.call('PUBLISH', channel, ARGV[a + 5])
    redis.call('XADD', KEYS[k + 2], 'MAXLEN', '~', maxlen, seq .. '-0', 'd', ARGV[a + 5])
    local snap = ARGV[a + 6]
    if snap ~= '' then
      redis.call('SET', KEYS[k + 3], snap)
      redis.call('HSET', KEYS[k + 1], 'epoch', epoch, 'seq', seq, 'xseq', ARGV[a + 4], 'snap_seq', seq)
    else
      redis.call('HSET', KEYS[k + 1], 'epoch', epoch, 'seq', seq, 'xseq', ARGV[a + 4])
    end
    redis.call('SADD', pairs_key, pair)
  end
end
return rejected
"""


def window_script_args(
    layout: RedisLayout, outputs: Sequence[WindowOutput], history: int
) -> tuple[list[str], list[str | bytes | int]]:
    """KEYS and ARGV of :data:`WRITE_WINDOW_LUA` for one window's outputs."""
    keys: list[str] = []
    argv: list[str | bytes | int] = [history, layout.pairs_key]
    for out in outputs:
        keys += [layout.state_key(out.pair), layout.history_key(out.pair), layout.snapshot_key(out.pair)]
        argv += [
            out.pair,
            layout.delta_channel(out.pair),
            out.epoch,
            out.seq,
            out.xseq,
            out.delta,
            out.snapshot or b"",
        ]
    return keys, argv


def parse_rejected(reply: Sequence[bytes]) -> dict[str, str]:
    """The script's reply -> {pair: reason} of pairs that were not written."""
    return {reply[i].decode(): reply[i + 1].decode() for i in range(0, len(reply), 2)}
