"""The books of every pair a client follows, and the rules that keep each equal to the source.

This is the client's sans-I/O core: it takes decoded snapshots and deltas with their
receipt time, updates the books, and queues the ops the connection must send
(``resync``). It never touches a socket, so every rule is tested with plain calls.

Per pair: a snapshot (asked for or not) replaces the book; a delta at seq <= last is
ignored, at last+1 applied and its checksum verified; a jump, a new epoch, a checksum
mismatch or an undecodable book message marks the pair unsynced and asks for one fresh
snapshot (``resync``), ignoring the pair's deltas until it arrives. If it does not
arrive within ``resync_retry_ns`` of being sent the request is repeated: at the next delta
of the pair, or at the connection's next periodic check (:meth:`BookSet.request_overdue`).

Every subscribe is remembered by id until answered. An error answer means its pairs are
not subscribed on this connection, so they are unsynced (a frozen book is never shown as
live). ``unknown_pair`` refuses the whole request for one bad pair, so such a request is
split in halves until each unknown pair stands alone; a pair refused alone (or by any
other code) is *refused*: shown in its view, raised by ``wait_synced``, and asked again
only after :attr:`BookSet.refusal_backoff` (seconds, then minutes), never in a loop.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from clients.backoff import REFUSAL_BACKOFF, Backoff
from clients.errors import SubscriptionRefusal
from clients.outbox import Outbox
from clients.stats import ClientStats
from clients.updates import BookUpdate
from mdcore.codec import MAX_PAIRS_PER_REQUEST
from mdcore.errors import ChecksumMismatchError, SequenceGapError
from mdcore.instruments import instrument
from mdcore.local_book import LocalBook
from mdcore.messages import Ack, ClientOp, Delta, ErrorMessage, Resync, Snapshot, StreamPosition, Subscribe

log = logging.getLogger(__name__)

SECOND_NS = 1_000_000_000


@dataclass(slots=True, eq=False)
class PairState:
    """One followed pair: its book and whether that book can be trusted right now."""

    pair: str
    book: LocalBook
    synced: bool = False
    waiting_since_ns: int | None = None  # when a snapshot was last asked for (subscribe or resync)
    updates: int = field(default=0)  # snapshots and deltas applied
    refusal: SubscriptionRefusal | None = None  # the gateway's last answer to subscribing it, if an error
    refusals: int = 0  # refusals in a row (the retry delay grows with them)
    retry_at_ns: int | None = None  # when a refused pair is asked for again


class BookSet:
    """Books by pair, the seq/epoch/checksum rules, and the ops those rules need sent."""

    def __init__(
        self,
        stats: ClientStats,
        emit: Callable[[BookUpdate], None],
        *,
        verify_checksums: bool = True,
        resync_retry_ns: int = 5 * SECOND_NS,
        refusal_backoff: Backoff = REFUSAL_BACKOFF,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.stats = stats
        self._emit = emit
        self._verify = verify_checksums
        self._resync_retry_ns = resync_retry_ns
        self.refusal_backoff = refusal_backoff
        self._rand = rand
        self._states: dict[str, PairState] = {}
        self._outbox = Outbox()
        self._inflight: dict[int, tuple[str, ...]] = {}  # subscribe id -> its pairs, until answered
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
        self._outbox.drop_resyncs(removed)  # the gateway would answer them with bad_request
        return removed

    def all_synced(self, pairs: Iterable[str] | None = None) -> bool:
        names = self._states if pairs is None else pairs
        return all(self.state(pair).synced for pair in names)

    def refusals(self, pairs: Iterable[str] | None = None) -> dict[str, SubscriptionRefusal]:
        """The refused pairs among ``pairs`` (default: all) and the gateway's answer for each."""
        names = self._states if pairs is None else pairs
        return {p: r for p in names if (r := self.state(p).refusal) is not None}

    # --- connection lifecycle --------------------------------------------------------

    def subscribe_ops(self, now_ns: int, pairs: Iterable[str] | None = None) -> list[Subscribe]:
        """Subscribe requests for ``pairs`` (default: all, as a new connection sends first).

        A synced book goes with ``since`` = its position, so the gateway can replay only
        what was missed; the others wait for a snapshot. Refused pairs go in requests of
        their own, so that a pair a gateway still does not offer cannot sink the others'.
        Requests are split to the protocol's per-request limit and remembered until answered.
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
        accepted = [p for p in names if self._states[p].refusal is None]
        refused = [p for p in names if self._states[p].refusal is not None]
        ops: list[Subscribe] = []
        for group in (accepted, refused):
            for start in range(0, len(group), MAX_PAIRS_PER_REQUEST):
                chunk = tuple(group[start : start + MAX_PAIRS_PER_REQUEST])
                op = Subscribe(chunk, self.next_id(), {p: since[p] for p in chunk if p in since})
                self._inflight[op.id] = chunk
                ops.append(op)
        return ops

    def begin_connection(self, now_ns: int) -> None:
        """A new connection: forget the old one's ops and answers, queue the subscribe of every pair."""
        self.connection_lost()
        self._outbox.extend(self.subscribe_ops(now_ns))

    def connection_lost(self) -> None:
        """Ops queued for the old connection are void: the next one re-subscribes everything."""
        self._outbox.clear()
        self._inflight.clear()

    def queue(self, ops: Iterable[ClientOp]) -> None:
        """Ops to send after those already queued (the client's own requests at run time)."""
        self._outbox.extend(ops)

    def request_overdue(self, now_ns: int) -> None:
        """Ask again for every snapshot awaited longer than ``resync_retry_ns`` (quiet pairs too),
        and subscribe again the refused pairs whose retry time has come."""
        due: list[str] = []
        for state in self._states.values():
            if state.synced:
                continue
            if state.refusal is not None:
                if state.retry_at_ns is None or now_ns >= state.retry_at_ns:
                    state.retry_at_ns = now_ns + self._refusal_delay_ns(state.refusals)  # if unanswered
                    due.append(state.pair)
                continue
            waited = state.waiting_since_ns
            if waited is None or now_ns - waited >= self._resync_retry_ns:
                log.info("%s: still no snapshot; asking again", state.pair)
                self._request_snapshot(state, now_ns)
        if due:
            log.info("asking again for %d refused pairs: %s", len(due), ", ".join(due[:10]))
            self._outbox.extend(self.subscribe_ops(now_ns, due))

    @property
    def has_ops(self) -> bool:
        return bool(self._outbox)

    def next_op(self, now_ns: int) -> ClientOp | None:
        """The next op to send, or None. A resync's retry period counts from now, its sending."""
        op = self._outbox.pop()
        if isinstance(op, Resync):
            state = self._states.get(op.pair)
            if state is not None and not state.synced:
                state.waiting_since_ns = now_ns
        return op

    def take_ops(self) -> list[ClientOp]:
        """Every op queued, in order (the caller sends them)."""
        return self._outbox.take_all()

    # --- answers to our requests -----------------------------------------------------

    def on_ack(self, ack: Ack) -> None:
        """``subscribed``: the request's pairs are followed; a refusal they had is over."""
        pairs = self._inflight.pop(ack.id, None) if type(ack.id) is int else None
        for pair in pairs or ():
            state = self._states.get(pair)
            if state is not None and state.refusal is not None:
                log.info("%s: subscribed after all", pair)
                state.refusal, state.refusals, state.retry_at_ns = None, 0, None

    def on_error(self, error: ErrorMessage, now_ns: int) -> bool:
        """An error answer; True if it refused one of our subscribes (then handled here)."""
        pairs = self._inflight.pop(error.id, None) if type(error.id) is int else None
        if pairs is None:
            return False
        self.stats.subscribe_refusals += 1
        states = [self._states[p] for p in pairs if p in self._states]
        for state in states:
            state.synced = False  # not subscribed on this connection: its book would freeze
        self._outbox.drop_resyncs(pairs)  # of a pair not subscribed, the gateway refuses them too
        if error.code == "unknown_pair" and len(states) > 1:
            half = len(states) // 2
            log.info("gateway refused %d pairs (%s); asking in halves", len(states), error.message)
            for group in (states[:half], states[half:]):
                self._outbox.extend(self.subscribe_ops(now_ns, [s.pair for s in group]))
            return True
        refusal = SubscriptionRefusal(error.code, error.message)
        delay_ns = 0
        for state in states:
            state.refusal = refusal
            state.refusals += 1
            state.waiting_since_ns = None
            delay_ns = self._refusal_delay_ns(state.refusals - 1)
            state.retry_at_ns = now_ns + delay_ns
        if states:
            log.error(
                "gateway refused to subscribe %s: %s: %s (asking again in %.1f s)",
                ", ".join(s.pair for s in states[:10]), error.code, error.message, delay_ns / SECOND_NS,
            )  # fmt: skip
        return True

    def _refusal_delay_ns(self, attempt: int) -> int:
        return int(self.refusal_backoff.delay(attempt, self._rand) * SECOND_NS)

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
        state.refusal, state.refusals, state.retry_at_ns = None, 0, None  # a snapshot: subscribed
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
            if state.refusal is not None:
                return  # in flight before the refusal; it is asked for on its own schedule
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
        """Queue one resync for the pair, unless one is queued already (it goes when paced)."""
        state.waiting_since_ns = now_ns
        if self._outbox.has_resync(state.pair):
            return
        self.stats.resyncs += 1
        self._outbox.add_resync(state.pair, self.next_id())
