"""The books of every pair a client follows, and the rules that keep each equal to the source.

This is the client's sans-I/O core: it takes decoded snapshots and deltas with their
receipt time, updates the books, and queues the ops the connection must send
(``resync``). It never touches a socket, so every rule is tested with plain calls.

Per pair: a snapshot (asked for or not) replaces the book; a delta at seq <= last is
ignored, at last+1 applied and its checksum verified; a jump, a new epoch, a checksum
mismatch or an undecodable book message marks the pair unsynced and asks for one fresh
snapshot (``resync``), ignoring the pair's deltas until it arrives. If it does not
arrive within ``resync_retry_ns`` the request is repeated: at the next delta of the pair,
or at the connection's next periodic check (:meth:`BookSet.request_overdue`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from clients.stats import ClientStats
from clients.updates import BookUpdate
from mdcore.codec import MAX_PAIRS_PER_REQUEST
from mdcore.errors import ChecksumMismatchError, SequenceGapError
from mdcore.instruments import instrument
from mdcore.local_book import LocalBook
from mdcore.messages import ClientOp, Delta, Resync, Snapshot, StreamPosition, Subscribe

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class PairState:
    """One followed pair: its book and whether that book can be trusted right now."""

    pair: str
    book: LocalBook
    synced: bool = False
    waiting_since_ns: int | None = None  # when a snapshot was last asked for (subscribe or resync)
    updates: int = field(default=0)  # snapshots and deltas applied


class BookSet:
    """Books by pair, the seq/epoch/checksum rules, and the ops those rules need sent."""

    def __init__(
        self,
        stats: ClientStats,
        emit: Callable[[BookUpdate], None],
        *,
        verify_checksums: bool = True,
        resync_retry_ns: int = 5_000_000_000,
    ) -> None:
        self.stats = stats
        self._emit = emit
        self._verify = verify_checksums
        self._resync_retry_ns = resync_retry_ns
        self._states: dict[str, PairState] = {}
        self._outbox: list[ClientOp] = []
        self._ids = itertools.count(1)

    # --- membership ------------------------------------------------------------------

    def next_id(self) -> int:
        """A fresh request id (ids are unique per client, across connections)."""
        return next(self._ids)

    @property
    def pairs(self) -> tuple[str, ...]:
        return tuple(self._states)

    def __contains__(self, pair: object) -> bool:
        return pair in self._states

    def state(self, pair: str) -> PairState:
        try:
            return self._states[pair]
        except KeyError:
            raise KeyError(f"{pair!r} is not subscribed on this client") from None

    def add(self, pairs: Iterable[str], now_ns: int) -> list[str]:
        """Follow ``pairs`` (checked against the catalogue); returns those that are new."""
        added: list[str] = []
        for pair in dict.fromkeys(pairs):
            if pair in self._states:
                continue
            state = PairState(pair, LocalBook(pair, instrument(pair)), waiting_since_ns=now_ns)
            self._states[pair] = state
            added.append(pair)
        return added

    def remove(self, pairs: Iterable[str]) -> list[str]:
        """Stop following ``pairs``; returns those that were followed. Their views go unsynced."""
        removed: list[str] = []
        for pair in dict.fromkeys(pairs):
            state = self._states.pop(pair, None)
            if state is not None:
                state.synced = False
                removed.append(pair)
        return removed

    def all_synced(self, pairs: Iterable[str] | None = None) -> bool:
        names = self._states if pairs is None else pairs
        return all(self.state(pair).synced for pair in names)

    # --- connection lifecycle --------------------------------------------------------

    def subscribe_ops(self, now_ns: int, pairs: Iterable[str] | None = None) -> list[Subscribe]:
        """Subscribe requests for ``pairs`` (default: all, as a new connection sends first).

        A synced book goes with ``since`` = its position, so the gateway can replay only
        what was missed; the others wait for a snapshot. Requests are split to the
        protocol's per-request limit.
        """
        names = list(self._states) if pairs is None else [p for p in pairs if p in self._states]
        since: dict[str, StreamPosition] = {}
        for pair in names:
            state = self._states[pair]
            position = state.book.position
            if state.synced and position is not None:
                since[pair] = position
            else:
                state.waiting_since_ns = now_ns
        ops: list[Subscribe] = []
        for start in range(0, len(names), MAX_PAIRS_PER_REQUEST):
            chunk = tuple(names[start : start + MAX_PAIRS_PER_REQUEST])
            chunk_since = {p: since[p] for p in chunk if p in since}
            ops.append(Subscribe(chunk, self.next_id(), chunk_since))
        return ops

    def connection_lost(self) -> None:
        """Ops queued for the old connection are void: the next one re-subscribes everything."""
        self._outbox.clear()

    def request_overdue(self, now_ns: int) -> None:
        """Ask again for every snapshot awaited longer than ``resync_retry_ns`` (quiet pairs too)."""
        for state in self._states.values():
            if state.synced:
                continue
            waited = state.waiting_since_ns
            if waited is None or now_ns - waited >= self._resync_retry_ns:
                log.info("%s: still no snapshot; asking again", state.pair)
                self._request_snapshot(state, now_ns)

    def take_ops(self) -> list[ClientOp]:
        """The ops queued since the last call, in order; the caller sends them."""
        ops, self._outbox = self._outbox, []
        return ops

    # --- the rules -------------------------------------------------------------------

    def on_snapshot(self, snap: Snapshot, received_ns: int) -> None:
        state = self._states.get(snap.pair)
        if state is None:
            self.stats.unexpected += 1
            return
        try:
            state.book.load_snapshot(snap)
        except ChecksumMismatchError as exc:
            self.stats.checksum_failures += 1
            log.warning("%s: snapshot does not verify (%s); asking for another", snap.pair, exc)
            self._lose_sync(state, received_ns)
            return
        except Exception as exc:
            self.stats.bad_frames += 1
            log.warning("%s: snapshot cannot be loaded (%r); asking for another", snap.pair, exc)
            self._lose_sync(state, received_ns)
            return
        if not state.synced:
            log.info("%s: synced at %s/%d", snap.pair, snap.epoch, snap.seq)
        state.synced = True
        state.waiting_since_ns = None
        state.updates += 1
        self.stats.snapshots += 1
        self._emit(
            BookUpdate(
                snap.pair, "snapshot", snap.epoch, snap.seq, snap.ts, None,
                received_ns, received_ns - snap.ts, None,
            )
        )  # fmt: skip

    def on_delta(self, delta: Delta, received_ns: int) -> None:
        state = self._states.get(delta.pair)
        if state is None:
            self.stats.unexpected += 1
            return
        if not state.synced:
            self.stats.ignored_deltas += 1
            waited = state.waiting_since_ns
            if waited is None or received_ns - waited >= self._resync_retry_ns:
                log.info("%s: still no snapshot; asking again", delta.pair)
                self._request_snapshot(state, received_ns)
            return
        try:
            applied = state.book.apply_delta(delta, verify=self._verify)
        except SequenceGapError as exc:
            self.stats.gaps += 1
            log.warning("%s; resyncing", exc)
            self._lose_sync(state, received_ns)
            return
        except ChecksumMismatchError as exc:
            self.stats.checksum_failures += 1
            log.warning("%s; resyncing", exc)
            self._lose_sync(state, received_ns)
            return
        except Exception as exc:
            self.stats.bad_frames += 1
            log.warning("%s: delta cannot be applied (%r); resyncing", delta.pair, exc)
            self._lose_sync(state, received_ns)
            return
        if not applied:
            self.stats.stale_deltas += 1
            return
        state.updates += 1
        self.stats.deltas += 1
        window_ns, exchange_ns = received_ns - delta.ts, received_ns - delta.xts
        self.stats.record_latency(exchange_ns, window_ns)
        self._emit(
            BookUpdate(
                delta.pair, "delta", delta.epoch, delta.seq, delta.ts, delta.xts,
                received_ns, window_ns, exchange_ns,
            )
        )  # fmt: skip

    def _lose_sync(self, state: PairState, now_ns: int) -> None:
        """Distrust the pair's book and ask for a fresh snapshot; its deltas wait for it."""
        state.synced = False
        self._request_snapshot(state, now_ns)

    def _request_snapshot(self, state: PairState, now_ns: int) -> None:
        state.waiting_since_ns = now_ns
        self.stats.resyncs += 1
        self._outbox.append(Resync(state.pair, self.next_id()))
