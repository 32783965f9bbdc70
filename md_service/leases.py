"""Which partitions this instance writes: group assignments, heartbeats, takeovers, releases.

The consumer group balances the partitions over the instances; Redis decides who writes.
A partition changes writer only at an atomic claim in Redis (:mod:`md_service.claim_script`),
and an instance keeps writing what it holds until a claim fences it, so neither a rebalance
nor an expired group session leaves a partition unwritten. Liveness does not depend on the
group either: every writer beats in Redis (:mod:`md_service.lease_script`), and

- a *follower* (a standby's partitions, or one another instance took from us while the
  group still gives it to us) takes the partition over **warm** once its writer released
  it or went silent for ``BOOKCAST_MD_TAKEOVER_MS``: its books continue the stored streams
  at exactly ``S+1`` (:mod:`md_service.handover`);
- a consumer-group member *adopts* any other partition whose writer released it or went
  silent for ``BOOKCAST_MD_ADOPT_MS``: **cold**, restored from Redis and read from the
  stored offset, as if the group had assigned it, until the group gives it to someone.

Driven by the service's loop, on its thread: no locks.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

import redis

from md_service.claim_script import Claim
from md_service.handover import continue_warm, why_cold
from md_service.ownership import ADOPTED, new_token, token_kind
from md_service.pair_stream import PairStream, new_epoch
from md_service.takeover import RELEASED, OwnerView, TakeoverWatch, is_released
from mdcore.messages import StreamPosition

if TYPE_CHECKING:
    from md_service.service import MdService

log = logging.getLogger("md_service")
CLAIMED_EVERY_S = 2.0  # how often a group member re-reads which partitions have an owner at all


class Leases:
    """The service's partitions as Redis leases: claim, beat, watch, take over, release."""

    def __init__(self, service: MdService) -> None:
        self.service = service
        cfg = service.cfg
        self.warm = TakeoverWatch(cfg.takeover_ms / 1000)
        # an adopter starts cold: it lets a warm follower (polling as often) win a released partition
        self.cold = TakeoverWatch(cfg.adopt_ms / 1000, release_grace_s=2 * cfg.heartbeat_ms / 1000)
        self.released: set[str] = set()  # our tokens we gave away: never adopted back
        self.claimed: list[int] = []  # partitions with an owner in Redis, as last read
        self._claimed_at = 0.0
        self.next_at = 0.0

    # --- the group's word -------------------------------------------------------------

    def assigned(self, partitions: list[int]) -> dict[int, int | None] | None:
        """The group gave us ``partitions``: claim them (a partition we still write stays as it is)."""
        s = self.service
        token = new_token(s.cfg.instance)
        claim = s._retry("claiming partitions", lambda: s.store.claim(token, partitions))
        if claim is None:
            return None
        starts = self._install(claim, token, assigned=True)
        s.counters.partitions_claimed += len(partitions)
        log.info("claimed partitions %s as %s; %d pairs", partitions, token, len(s.streams))
        return starts

    def revoked(self, partitions: list[int], lost: bool) -> None:
        """The group moved ``partitions`` elsewhere: keep writing them until the new owner's claim
        fences us (no gap); stop following them (a standby follows its own set)."""
        s = self.service
        own = s.ownership.partitions
        for p in partitions:
            part = own.get(p)
            if part is None:
                continue
            part.assigned = False
            if part.following and not s.cfg.standby:
                s.ownership.drop(p)
                s.source.unfetch([p])
        s.counters.partitions_released += len(partitions)
        log.info("the group %s partitions %s; writing them until another instance claims them",
                 "lost" if lost else "revoked", partitions)  # fmt: skip

    # --- following from the start (a standby) -------------------------------------------

    def follow(self, partitions: list[int]) -> bool:
        """Read ``partitions`` warm from where Redis' stored windows end; False if stopped first."""
        s = self.service
        point = s._retry("reading where to follow", lambda: s.store.follow_point(partitions))
        if point is None:
            return False
        claim, stored = point
        for p in partitions:
            s.ownership.follow(p, claim.offsets.get(p))
        for pair, p in claim.pairs.items():
            state, local = stored[pair]
            if state is not None and local is not None:
                stream = PairStream.restored(
                    pair, p, state.epoch, state.seq, state.xseq, state.snap_seq, local.book
                )
                s.ownership.add_stream(stream)
            else:
                s.ownership.partitions[p].cold = True  # Redis cannot give this book: take over cold
        s.source.fetch({p: claim.offsets.get(p) for p in partitions})
        log.info("following partitions %s (%d pairs) as a standby", partitions, len(s.streams))
        return True

    # --- every heartbeat ----------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Beat what we write; take over what a gone writer left. One or two Redis calls."""
        s = self.service
        self.next_at = now + s.cfg.heartbeat_ms / 1000
        if s.redis_down_since is not None:
            return  # the window writes retry and report it; beats resume with them
        try:
            lost = s.store.beat(s.ownership.tokens())
            for p, owner in lost.items():
                s.windows.partition_lost(p, owner)
            followed, adoptable = self._candidates(now)
            views = s.store.watch(followed + adoptable) if followed or adoptable else {}
        except redis.RedisError as exc:
            s.counters.redis_errors += 1
            log.debug("heartbeat failed: %s", exc)
            return
        due: dict[tuple[str, int], dict[int, str]] = {}  # (token kind, dead after ms) -> partition -> owner
        own = s.ownership.partitions
        kind = "s" if s.cfg.standby else ""
        for p in followed:
            view = views.get(p)
            if view is None:  # its cluster node is down now: judged again at the next beat
                continue
            if own[p].assigned and token_kind(view.owner) == ADOPTED:
                due.setdefault((kind, 0), {})[p] = view.owner  # ours by the group: take it back now
            elif self.warm.due(p, view):
                due.setdefault((kind, s.cfg.takeover_ms), {})[p] = view.owner
        for p in adoptable:
            view = views.get(p)
            if view is None:
                continue
            if is_released(view.owner) and view.owner[len(RELEASED) :] in self.released:
                continue
            if self.cold.due(p, view):
                due.setdefault((ADOPTED, s.cfg.takeover_ms), {})[p] = view.owner
        for (kind, dead_after_ms), expected in due.items():
            self.take_over(expected, views, kind, dead_after_ms)

    def _candidates(self, now: float) -> tuple[list[int], list[int]]:
        """Partitions we follow (warm), and those a group member could adopt (cold): every
        partition of the topic (Kafka's metadata) or at least every one with an owner in Redis."""
        s = self.service
        own = s.ownership.partitions
        followed = s.ownership.following_numbers()
        if s.cfg.standby or not s.cfg.adopt_ms:
            return followed, []
        if now >= self._claimed_at:  # redis.RedisError: the caller counts it
            self._claimed_at = now + CLAIMED_EVERY_S
            self.claimed = s.store.claimed_partitions()
        every = set(s.source.partitions() or ()) if hasattr(s.source, "partitions") else set()
        return followed, sorted(p for p in every | set(self.claimed) if p not in own)

    def take_over(
        self, due: Mapping[int, str], views: Mapping[int, OwnerView], kind: str, dead_after_ms: int
    ) -> None:
        """Claim partitions whose writer is gone (if it still is, checked atomically); write at once."""
        s = self.service
        token = new_token(s.cfg.instance, kind)
        claim = s._retry("taking partitions over", lambda: s.store.take_over(token, due, dead_after_ms))
        if claim is None or not claim.offsets:
            return
        cold = self._install(claim, token, assigned=False)
        for p in claim.offsets:
            self.warm.forget(p)
            self.cold.forget(p)
            previous, view = claim.previous[p], views[p]
            if is_released(previous):
                why = "released"
            elif dead_after_ms:
                why = f"silent for {self.warm.silent_ms(view)} ms"
            else:
                why = "adopted, and the group gives it to us"
            log.warning("partition %d: took it over from %s (%s), %s", p, previous or "nobody", why,
                        "cold" if p in cold else "warm")  # fmt: skip
        s.counters.takeovers += len(claim.offsets)
        s.counters.takeovers_cold += len(cold)
        s.write_window(check=True, partitions=list(claim.offsets))  # the first deltas go out now

    # --- a clean stop -----------------------------------------------------------------------

    def release_all(self) -> None:
        """Give every partition we write away at once (after the last windows are written)."""
        s = self.service
        tokens = s.ownership.tokens()
        if not tokens:
            return
        try:
            released = s.store.release(tokens)
        except redis.RedisError as exc:
            s.counters.redis_errors += 1
            log.warning("could not release partitions %s (%s): they move when their beat is old",
                        sorted(tokens), exc)  # fmt: skip
            return
        self.released.update(tokens.values())
        for p in tokens:
            s.ownership.drop(p)
        s.counters.releases += len(released)
        log.info("released partitions %s: a standby or another instance takes them over now", released)

    # --- installing a claim -----------------------------------------------------------------

    def _install(self, claim: Claim, token: str, assigned: bool) -> dict[int, int | None]:
        """Write the claimed partitions: unchanged if we wrote them already, warm if our books
        can continue the stored streams, else restored from Redis (cold). Returns where reading
        (re)starts for the cold ones; they are fetched from there."""
        s = self.service
        own = s.ownership.partitions
        s.datasets.update(claim.datasets)
        kept, rest = [], []
        for p in claim.offsets:
            part = own.get(p)
            if part is not None and not part.following and claim.previous[p] == part.token:
                kept.append(p)  # nobody wrote it since our last write: our streams are what Redis holds
            else:
                rest.append(p)
        for p in kept:
            own[p].token = token
            own[p].assigned = own[p].assigned or assigned
        if not rest:
            return {}
        behind = s._behind(claim, rest)
        pairs = sorted(pair for pair, p in claim.pairs.items() if p in rest)
        stored = s._retry("restoring pairs", lambda: s.store.load_many(pairs))
        if stored is None:
            return {}
        starts: dict[int, int | None] = {}
        for p in rest:
            mine = {pair: stored[pair] for pair, home in claim.pairs.items() if home == p}
            if not self._warm(p, token, assigned, claim.offsets[p], mine):
                start = self._cold(p, token, assigned, claim.offsets[p], mine)
                starts[p] = start
            if p in behind:  # Redis lost writes of it: clients may hold later seqs than it does
                own[p].behind = True
                for pair in list(own[p].pairs):
                    s.windows.restart(s.streams[pair], s.streams[pair].stored)
        s.source.fetch(starts)
        return starts

    def _warm(self, p: int, token: str, assigned: bool, offset: int | None, stored: Mapping) -> bool:
        s = self.service
        part = s.ownership.partitions.get(p)
        if part is None:
            return False
        streams = {pair: s.streams[pair] for pair in part.pairs}
        why = why_cold(streams, part.position, part.cold, offset, stored)
        if why is not None:
            log.warning("partition %d: our books cannot continue it (%s): restoring it from Redis", p, why)
            return False
        fresh = continue_warm(streams, stored, lambda: new_epoch(s.clock_ns()))
        s.counters.epochs_started += len(fresh)
        part.token, part.written = token, offset
        part.following = part.fenced = part.cold = False
        part.assigned = part.assigned or assigned
        return True

    def _cold(self, p: int, token: str, assigned: bool, offset: int | None, stored: Mapping) -> int | None:
        """Restore the partition's pairs from Redis; returns where to read it from (None: its start)."""
        s = self.service
        was = s.ownership.partitions.get(p)
        s.ownership.own([p], token, assigned=assigned or (was is not None and was.assigned))
        part = s.ownership.partitions[p]
        start = offset
        for pair, (state, local) in stored.items():
            if state is not None and local is not None:
                stream = PairStream.restored(
                    pair, p, state.epoch, state.seq, state.xseq, state.snap_seq, local.book
                )
                s.ownership.add_stream(stream)
                continue
            # Redis lost (or garbled) this pair's stream: rebuild its book from the partition's start.
            log.warning("%s: no usable stored stream; reading partition %d from its start", pair, p)
            start = None
            part.rewound = True
            s.counters.replays += 1
            if state is not None:
                s.ownership.replacing[pair] = StreamPosition(state.epoch, state.seq)
        return start

    def forget(self, partitions: Collection[int]) -> None:
        for p in partitions:
            self.warm.forget(p)
            self.cold.forget(p)
