"""md_service's side of Redis: claim partitions, load pair streams, write windows.

Synchronous on purpose: md_service's loop is single-threaded and must not run ahead of
Redis. Every method raises ``redis.RedisError`` when Redis cannot be reached; the service
retries with backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from redis.commands.core import Script

from md_service.claim_script import (
    CLAIM_LUA,
    READ_CLAIM_LUA,
    Claim,
    claim_args,
    merge_claims,
    new_dataset_id,
    parse_claim,
)
from md_service.intake import Loaded
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
    merge_results,
    parse_result,
    snapshot_script_args,
    window_script_args,
)
from mdcore.errors import IntegrityError
from mdcore.local_book import LocalBook
from mdcore.redis_layout import READ_BOOK_LUA, RedisLayout, StoredState, parse_state, rebuild_book
from mdruntime.redis_connect import ScriptCall, redis_client, run_scripts

Restored = dict[str, tuple[StoredState | None, LocalBook | None]]
FOLLOW_ATTEMPTS = 5  # a follow point is re-read if a pair appeared in between (rare: a pair's first write)

log = logging.getLogger(__name__)


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
    """The Redis calls of one md_service instance, for one topic and key prefix.

    Every call that concerns partitions runs once per partition (each partition's keys share a
    hash slot, :mod:`mdcore.redis_layout`), and the calls of one request go out together in
    one pipeline: one round trip on a single server, one per node on a Redis Cluster.
    """

    def __init__(
        self,
        url: str,
        layout: RedisLayout,
        topic: str,
        history: int,
        timeout: float = 5.0,
        cluster: Sequence[str] = (),
    ) -> None:
        self.layout = layout
        self.topic = topic
        self.history = history
        self.client = redis_client(
            url,
            cluster,
            socket_timeout=timeout,
            socket_connect_timeout=min(timeout, 2.0),
            health_check_interval=10,
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

    def md_key(self, partition: int) -> str:
        return self.layout.md_key(partition, self.topic)

    def _each(
        self, script: Script, calls: Sequence[tuple[list[str], list[Any]]], partial: bool = False
    ) -> list[Any]:
        """Run ``script`` once per (keys, args), in one pipeline per server; the replies in order
        (``partial``: a reply is the exception where a cluster node could not be reached)."""
        return run_scripts(self.client, [(script, keys, args) for keys, args in calls], partial=partial)

    def ping(self) -> bool:
        return bool(self.client.ping())

    def claim(self, token: str, partitions: Sequence[int], force: bool = True) -> Claim:
        """Own ``partitions`` under ``token`` (``force=False``: only those nobody owns)."""
        mode = "force" if force else "if-free"
        calls = [([self.md_key(p)], claim_args(token, [p], mode, new_dataset_id())) for p in partitions]
        return merge_claims([parse_claim(r) for r in self._each(self._claim, calls)])

    def take_over(self, token: str, expected: Mapping[int, str], dead_after_ms: int) -> Claim:
        """Own each partition whose owner is still ``expected[p]`` and released or silent long enough."""
        calls = [
            ([self.md_key(p)], claim_args(token, {p: owner}, "takeover", new_dataset_id(), dead_after_ms))
            for p, owner in expected.items()
        ]
        return merge_claims([parse_claim(r) for r in self._each(self._claim, calls)])

    def follow_point(self, partitions: Sequence[int]) -> tuple[Claim, Restored]:
        """Where following ``partitions`` starts: their stored offsets and pairs, and those pairs'
        books, each partition read in one transaction (one hash slot), so the books are exactly
        those the partition's offset resumes after."""
        claims: list[Claim] = []
        restored: Restored = {}
        for p in partitions:
            claim, books = self._follow_point(p)
            claims.append(claim)
            restored.update(books)
        return merge_claims(claims), restored

    def _follow_point(self, p: int) -> tuple[Claim, Restored]:
        keys = [self.md_key(p)]
        pairs = sorted(parse_claim(self._read_claim(keys=keys, args=[p])).pairs)
        for _ in range(FOLLOW_ATTEMPTS):
            calls: list[ScriptCall] = [(self._read_claim, keys, [p])]
            calls += [(self._read_book, self.layout.book_keys(pair), []) for pair in pairs]
            reply, *books = run_scripts(self.client, calls, transaction=True)  # one slot: one MULTI
            claim = parse_claim(reply)
            if set(claim.pairs) <= set(pairs):
                return claim, {pair: restore(pair, r) for pair, r in zip(pairs, books, strict=True)}
            pairs = sorted(claim.pairs)
        raise redis.RedisError("the partitions' pairs kept changing while reading where to follow")

    def beat(self, tokens: Mapping[int, str]) -> dict[int, str]:
        """Heartbeat of the partitions still owned under these tokens; returns the others' owners."""
        calls = [([self.md_key(p)], token_args({p: t})) for p, t in tokens.items()]
        lost: dict[int, str] = {}
        for reply in self._each(self._beat, calls, partial=True):  # a node down must not stop the rest
            if not isinstance(reply, Exception):
                lost.update(parse_lost(reply))
        return lost

    def release(self, tokens: Mapping[int, str]) -> list[int]:
        """Give the partitions still owned under these tokens away (a clean stop)."""
        calls = [([self.md_key(p)], token_args({p: t})) for p, t in tokens.items()]
        return [int(p) for reply in self._each(self._release, calls) for p in reply]

    def claimed_partitions(self) -> list[int]:
        """Every partition that has an owner (token or release marker) in Redis."""
        calls: list[tuple[list[str], list[Any]]] = [
            ([self.md_key(p)], []) for p in range(self.layout.partitions)
        ]
        return sorted(int(p) for reply in self._each(self._claimed, calls) for p in reply)

    def watch(self, partitions: Sequence[int]) -> dict[int, OwnerView]:
        """Owner, last beat and Redis' clock of each partition (each read atomically)."""
        calls = [([self.md_key(p)], [p]) for p in partitions]
        views: dict[int, OwnerView] = {}
        for p, reply in zip(partitions, self._each(self._watch, calls, partial=True), strict=True):
            if not isinstance(reply, Exception):  # a partition on a node down is not judged now
                views.update(parse_watch([p], reply))
        return views

    def load(self, pair: str) -> Loaded:
        """The pair's stored stream (see :func:`restore`); its partition is computed, not stored
        (:mod:`mdcore.partitioning`: the intake refuses a pair met on another one)."""
        (reply,) = self._each(self._read_book, [(self.layout.book_keys(pair), [])])
        return restore(pair, reply)

    def load_many(self, pairs: Sequence[str]) -> Restored:
        """:func:`restore` of many pairs in one round trip."""
        replies = self._each(self._read_book, [(self.layout.book_keys(pair), []) for pair in pairs])
        return {pair: restore(pair, reply) for pair, reply in zip(pairs, replies, strict=True)}

    def write_window(self, parts: Sequence[PartitionWrite], outputs: Sequence[WindowOutput]) -> WindowResult:
        """Write one window: one atomic script per partition (see :mod:`md_service.window_script`)."""
        by_partition: dict[int, list[WindowOutput]] = {part.partition: [] for part in parts}
        for out in outputs:
            by_partition[out.partition].append(out)
        calls: list[ScriptCall] = []
        for part in parts:
            outs = by_partition[part.partition]
            keys, args = window_script_args(self.layout, self.topic, part, outs, self.history)
            calls.append((self._write_window, keys, args))
        # A cluster node down fails only its partitions (returned in ``failed``; a single server
        # that cannot be reached raises, and the caller retries the whole window).
        replies = run_scripts(self.client, calls, partial=True)
        results = []
        for part, reply in zip(parts, replies, strict=True):
            failed = isinstance(reply, Exception)
            results.append(WindowResult({}, {}, {}, {part.partition}) if failed else parse_result(reply))
        return merge_results(results)

    def write_snapshots(self, writes: Sequence[SnapshotWrite]) -> set[str]:
        """Store periodic snapshots (fenced); returns the pairs whose snapshot was stored."""
        by_owner: dict[tuple[int, str], list[SnapshotWrite]] = {}
        for w in writes:
            by_owner.setdefault((w.partition, w.token), []).append(w)
        calls = [
            snapshot_script_args(self.layout, self.topic, p, token, group)
            for (p, token), group in by_owner.items()
        ]
        return {pair.decode() for reply in self._each(self._write_snapshots, calls) for pair in reply}

    def close(self) -> None:
        self.client.close()
