"""The gateway's reads of md_service's streams, the same on a single Redis and a Redis Cluster.

Each read touches one pair, and every key of a pair carries its partition's hash tag, so each
is one Lua script on one node: :data:`~mdcore.redis_layout.READ_BOOK_LUA` for a book, and
:data:`READ_HISTORY_LUA` for the state and the deltas after a seq, read together so that the
answer says exactly how far history reaches. Only :meth:`StoreReads.read_positions` and
:meth:`StoreReads.known_pairs` span pairs; they are non-transactional pipelines, which
redis-py splits per node on a cluster.
"""

from __future__ import annotations

from typing import Any

from mdcore.local_book import LocalBook
from mdcore.messages import StreamPosition
from mdcore.redis_layout import (
    DELTA_FIELD,
    READ_BOOK_LUA,
    RedisLayout,
    StoredState,
    parse_state,
    rebuild_book,
)

MAX_HISTORY_READ = 1000  # default of GatewayConfig.max_history_read

# KEYS: state, hist. ARGV: seq, count. Returns {state fields flat list, [[id, [field, value]], ...]}
# with at most ``count`` entries after ``seq``, in one atomic step.
READ_HISTORY_LUA = """
local state = redis.call('HGETALL', KEYS[1])
local after = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])
return {state, after}
"""


def history_answer(
    state: StoredState | None, epoch: str, seq: int, limit: int, entries: list[tuple[int, bytes]]
) -> list[tuple[int, bytes]] | None:
    """The deltas after ``seq`` if ``entries`` (read with ``state``, at most ``limit``) reach
    from ``seq + 1`` to where the stream is; None if the caller must load a book instead."""
    if state is None or state.epoch != epoch or state.seq - seq > limit:
        return None
    if not entries:
        return [] if state.seq == seq else None
    return entries if entries[0][0] == seq + 1 else None


class StoreReads:
    """Books, history, positions and pairs, through one redis-py asyncio client."""

    def __init__(self, client: Any, layout: RedisLayout) -> None:
        self.client = client
        self.layout = layout
        self.max_history_read = MAX_HISTORY_READ
        self._read_book = client.register_script(READ_BOOK_LUA)
        self._read_history = client.register_script(READ_HISTORY_LUA)

    async def load_book(self, pair: str) -> LocalBook | None:
        """The pair's book at md_service's last seq (atomic read), or None if it has no stream."""
        loaded = rebuild_book(pair, await self._read_book(keys=self.layout.book_keys(pair)))
        return loaded[1] if loaded else None

    async def read_history(self, pair: str, epoch: str, seq: int) -> list[tuple[int, bytes]] | None:
        """Deltas after ``seq`` of ``epoch`` as ``(seq, bytes)``, or None if history does not reach.

        At most ``max_history_read`` deltas are read: a position further behind than that is
        answered None too (the caller sends a snapshot or reloads, which costs Redis less than
        the replay), so no request can make one read fetch a whole long history.
        """
        limit = self.max_history_read
        keys = [self.layout.state_key(pair), self.layout.history_key(pair)]
        flat_state, entries = await self._read_history(keys=keys, args=[seq, limit])
        out = []
        for entry_id, fields in entries:
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            out.append((int(entry_id.split(b"-", 1)[0]), values[DELTA_FIELD]))
        return history_answer(parse_state(flat_state), epoch, seq, limit, out)

    async def read_positions(self, pairs: list[str]) -> dict[str, StreamPosition | None]:
        """md_service's current ``(epoch, seq)`` of each pair (None: no stream), in one round trip."""
        async with self.client.pipeline(transaction=False) as pipe:
            for pair in pairs:
                pipe.hmget(self.layout.state_key(pair), "epoch", "seq")
            replies = await pipe.execute()
        out: dict[str, StreamPosition | None] = {}
        for pair, (epoch, seq) in zip(pairs, replies, strict=True):
            out[pair] = (
                StreamPosition(epoch.decode(), int(seq)) if epoch is not None and seq is not None else None
            )
        return out

    async def known_pairs(self) -> set[str]:
        """Every pair md_service has a stream for (one set per partition)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for p in range(self.layout.partitions):
                pipe.smembers(self.layout.pairs_key(p))
            replies = await pipe.execute()
        return {pair.decode() for members in replies for pair in members}


class ReadsThrough:
    """The read half of :class:`gateway.store.BookStore`, for a link that reads through ``reads``."""

    reads: StoreReads

    async def load_book(self, pair: str) -> LocalBook | None:
        return await self.reads.load_book(pair)

    async def read_history(self, pair: str, epoch: str, seq: int) -> list[tuple[int, bytes]] | None:
        return await self.reads.read_history(pair, epoch, seq)

    async def read_positions(self, pairs: list[str]) -> dict[str, StreamPosition | None]:
        return await self.reads.read_positions(pairs)

    async def known_pairs(self) -> set[str]:
        return await self.reads.known_pairs()
