"""md_service's side of Redis: claim partitions, load pair streams, write windows.

Synchronous on purpose: md_service's loop is single-threaded and must not run ahead of
Redis. Every method raises ``redis.RedisError`` when Redis cannot be reached; the service
retries with backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import redis

from md_service.claim_script import CLAIM_LUA, READ_CLAIM_LUA, Claim, claim_args, new_dataset_id, parse_claim
from md_service.lease_script import (
    BEAT_LUA,
    CLAIMED_LUA,
    RELEASE_LUA,
    WATCH_LUA,
    parse_lost,
    parse_watch,
    token_args,
)
from md_service.pair_stream import WindowOutput
from md_service.takeover import OwnerView
from md_service.window_script import (
    WRITE_SNAPSHOTS_LUA,
    WRITE_WINDOW_LUA,
    PartitionWrite,
    SnapshotWrite,
    WindowResult,
    md_key,
    parse_result,
    snapshot_script_args,
    window_script_args,
)
from mdcore.errors import IntegrityError
from mdcore.local_book import LocalBook
from mdcore.redis_layout import READ_BOOK_LUA, RedisLayout, StoredState, parse_state, rebuild_book

Loaded = tuple[StoredState | None, LocalBook | None, int | None]
Restored = dict[str, tuple[StoredState | None, LocalBook | None]]
FOLLOW_ATTEMPTS = 5  # a follow point is re-read if a pair appeared in between (rare: a pair's first write)

log = logging.getLogger(__name__)


def status_key(layout: RedisLayout, instance: str) -> str:
    """Where an md_service instance leaves its latest status (JSON of :meth:`MdService.status`)."""
    return f"{layout.prefix}:md:status:{instance}"


def restore(pair: str, reply: Sequence[object]) -> tuple[StoredState | None, LocalBook | None]:
    """A :data:`READ_BOOK_LUA` reply as (state, book at that state).

    ``(None, None)``: Redis has no stream for the pair. ``(state, None)``: it has one that does
    not add up (a hole in the history, a bad checksum), which a new epoch must replace.
    """
    try:
        state = parse_state(reply[0])  # type: ignore[arg-type]
    except IntegrityError as exc:
        log.error("%s: unreadable stored state: %s", pair, exc)
        return None, None
    if state is None:
        return None, None
    try:
        rebuilt = rebuild_book(pair, reply)
    except (IntegrityError, ValueError, KeyError) as exc:
        log.error("%s: stored stream at %s/%d does not add up: %s", pair, state.epoch, state.seq, exc)
        return state, None
    return (state, rebuilt[1]) if rebuilt is not None else (state, None)


class RedisStore:
    """The Redis calls of one md_service instance, for one topic and key prefix."""

    def __init__(self, url: str, layout: RedisLayout, topic: str, history: int, timeout: float = 5.0) -> None:
        self.layout = layout
        self.topic = topic
        self.history = history
        self.md_key = md_key(layout, topic)
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=min(timeout, 2.0), health_check_interval=10
        )
        self._read_book = self.client.register_script(READ_BOOK_LUA)
        self._write_window = self.client.register_script(WRITE_WINDOW_LUA)
        self._claim = self.client.register_script(CLAIM_LUA)
        self._write_snapshots = self.client.register_script(WRITE_SNAPSHOTS_LUA)
        self._read_claim = self.client.register_script(READ_CLAIM_LUA)
        self._beat = self.client.register_script(BEAT_LUA)
        self._release = self.client.register_script(RELEASE_LUA)
        self._watch = self.client.register_script(WATCH_LUA)
        self._claimed = self.client.register_script(CLAIMED_LUA)

    def ping(self) -> bool:
        return bool(self.client.ping())

    def claim(self, token: str, partitions: Sequence[int], force: bool = True) -> Claim:
        """Own ``partitions`` under ``token`` (``force=False``: only those nobody owns)."""
        args = claim_args(token, partitions, "force" if force else "if-free", new_dataset_id())
        return parse_claim(self._claim(keys=[self.md_key], args=args))

    def take_over(self, token: str, expected: Mapping[int, str], dead_after_ms: int) -> Claim:
        """Own each partition whose owner is still ``expected[p]`` and released or silent long enough."""
        args = claim_args(token, expected, "takeover", new_dataset_id(), dead_after_ms)
        return parse_claim(self._claim(keys=[self.md_key], args=args))

    def follow_point(self, partitions: Sequence[int]) -> tuple[Claim, Restored]:
        """Where following ``partitions`` starts: their stored offsets and pairs, and those pairs'
        books, read in one transaction, so the books are exactly those the offsets resume after."""
        keys = [self.md_key]
        pairs = sorted(parse_claim(self._read_claim(keys=keys, args=list(partitions))).pairs)
        for _ in range(FOLLOW_ATTEMPTS):
            pipe = self.client.pipeline(transaction=True)
            self._read_claim(keys=keys, args=list(partitions), client=pipe)
            for pair in pairs:
                self._read_book(keys=self.layout.book_keys(pair), client=pipe)
            reply, *books = pipe.execute()
            claim = parse_claim(reply)
            if set(claim.pairs) <= set(pairs):
                return claim, {pair: restore(pair, r) for pair, r in zip(pairs, books, strict=True)}
            pairs = sorted(claim.pairs)
        raise redis.RedisError("the partitions' pairs kept changing while reading where to follow")

    def beat(self, tokens: Mapping[int, str]) -> dict[int, str]:
        """Heartbeat of the partitions still owned under these tokens; returns the others' owners."""
        if not tokens:
            return {}
        return parse_lost(self._beat(keys=[self.md_key], args=token_args(tokens)))

    def release(self, tokens: Mapping[int, str]) -> list[int]:
        """Give the partitions still owned under these tokens away (a clean stop)."""
        if not tokens:
            return []
        return [int(p) for p in self._release(keys=[self.md_key], args=token_args(tokens))]

    def claimed_partitions(self) -> list[int]:
        """Every partition that has an owner (token or release marker) in Redis."""
        return sorted(int(p) for p in self._claimed(keys=[self.md_key]))

    def watch(self, partitions: Sequence[int]) -> dict[int, OwnerView]:
        """Owner, last beat and Redis' clock of each partition, in one atomic read."""
        if not partitions:
            return {}
        return parse_watch(partitions, self._watch(keys=[self.md_key], args=list(partitions)))

    def load(self, pair: str) -> Loaded:
        """The pair's stored stream (see :func:`restore`) and the partition Redis says it lives in."""
        pipe = self.client.pipeline(transaction=False)
        self._read_book(keys=self.layout.book_keys(pair), client=pipe)
        pipe.hget(self.md_key, f"pair:{pair}")
        reply, home = pipe.execute()
        state, local = restore(pair, reply)
        return state, local, int(home) if home else None

    def load_many(self, pairs: Sequence[str]) -> Restored:
        """:func:`restore` of many pairs in one round trip."""
        if not pairs:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for pair in pairs:
            self._read_book(keys=self.layout.book_keys(pair), client=pipe)
        return {pair: restore(pair, reply) for pair, reply in zip(pairs, pipe.execute(), strict=True)}

    def write_window(self, parts: Sequence[PartitionWrite], outputs: Sequence[WindowOutput]) -> WindowResult:
        """Write one window atomically (see :mod:`md_service.window_script`)."""
        keys, argv = window_script_args(self.layout, self.topic, parts, outputs, self.history)
        return parse_result(self._write_window(keys=keys, args=argv))

    def write_snapshots(self, writes: Sequence[SnapshotWrite]) -> set[str]:
        """Store periodic snapshots (fenced); returns the pairs whose snapshot was stored."""
        keys, argv = snapshot_script_args(self.layout, self.topic, writes)
        return {pair.decode() for pair in self._write_snapshots(keys=keys, args=argv)}

    def put_status(self, instance: str, payload: bytes, ttl_s: float) -> None:
        """Leave this instance's status where operators (and tests) can read it; it expires if we die."""
        self.client.set(status_key(self.layout, instance), payload, px=max(1, int(ttl_s * 1000)))

    def close(self) -> None:
        self.client.close()
