"""What a client's subscribe, unsubscribe and resync do, including recovery with ``since``.

A subscribe first makes sure every new pair has a replica and a confirmed Redis channel,
and — for pairs with ``since`` — gathers what recovery needs (waiting briefly for a
loading replica; reading md_service's history only when the replica's recent deltas do
not reach back). Then, in one synchronous step with no await, it answers ``subscribed``,
sends each pair's replayed deltas or its snapshot, and adds the client to the fan-out; so
nothing can slip between the replay (or snapshot) and the live deltas.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from gateway.core.recovery import chunk_frames, plan_replay, replay_costs_more
from gateway.hub import Hub
from gateway.session import Subscriber
from mdcore.codec import encode_ack, pack_frame
from mdcore.errors import ProtocolError
from mdcore.messages import Ack, Resync, StreamPosition, Subscribe, Unsubscribe

log = logging.getLogger(__name__)

PACK_FRAME_BYTES = 64 * 1024  # the answer, snapshots and replayed deltas go in frames of at most this
MAX_AHEAD = 1_000  # a client this far ahead of the replica (same epoch) still counts as recovered


async def subscribe(hub: Hub, session: Subscriber, op: Subscribe) -> None:
    offered = await hub.offered_pairs()
    unknown = [p for p in op.pairs if p not in offered]
    if unknown:
        raise ProtocolError("unknown_pair", f"not offered here: {', '.join(unknown[:10])}", op.id)
    new = [p for p in op.pairs if p not in session.pairs]
    limit = hub.cfg.max_pairs
    if len(session.pairs) + len(new) > limit:
        raise ProtocolError(
            "too_many_pairs",
            f"at most {limit} pairs per connection ({len(session.pairs)} followed, {len(new)} more asked)",
            op.id,
        )
    hub.claim(new)
    try:
        await hub.want_pairs(new)
        since = {p: pos for p, pos in op.since.items() if p in new and not session.lagging}
        histories = await _gather_recovery(hub, since)
        if not session.open:
            return
        _commit(hub, session, op, new, since, histories)
    finally:
        hub.unclaim(new)


async def _gather_recovery(hub: Hub, since: dict[str, StreamPosition]) -> dict[str, list[tuple[int, bytes]]]:
    """Wait (bounded) for loading replicas; read history where recent deltas do not reach."""
    histories: dict[str, list[tuple[int, bytes]]] = {}
    for pair, pos in since.items():
        await hub.wait_live(pair, hub.cfg.recovery_wait_s)
        replica = hub.replica(pair)
        if replica is None:
            continue
        head = replica.position
        if not replica.live or head is None or head.epoch != pos.epoch or pos.seq >= head.seq:
            continue
        recent = replica.recent
        if recent and recent[0][0] <= pos.seq + 1:
            continue  # memory has everything
        if replay_costs_more(head.seq - pos.seq, recent, replica.snapshot_size):
            hub.counters["recovery_snapshot_cheaper"] += 1
            continue  # a snapshot, encoded once and shared, costs less than this replay
        hub.counters["recovery_history_reads"] += 1
        try:
            found = await hub.link.read_history(pair, pos.epoch, pos.seq)
        except (RedisError, OSError) as exc:
            hub.counters["redis_read_errors"] += 1
            log.warning("%s: history read for recovery failed: %s", pair, exc)
            found = None
        if found is not None:
            histories[pair] = found
    return histories


def _commit(
    hub: Hub,
    session: Subscriber,
    op: Subscribe,
    new: list[str],
    since: dict[str, StreamPosition],
    histories: dict[str, list[tuple[int, bytes]]],
) -> None:
    """Answer, then replay or snapshot each pair, then join the fan-out: no await in between."""
    plans: dict[str, list[bytes] | None] = {}
    for pair, pos in since.items():
        replica = hub.replica(pair)
        if replica is None or not replica.live:
            plans[pair] = None
            continue
        plans[pair] = plan_replay(pos, replica.position, (histories.get(pair, ()), replica.recent), MAX_AHEAD)
    asked = [p for p in op.pairs if p in op.since]
    recovered = all(plans.get(p) is not None for p in asked) if asked else None
    out: list[tuple[str | None, bytes]] = [(None, encode_ack(Ack("subscribed", op.pairs, op.id, recovered)))]
    hub.counters["subscribes"] += 1
    fresh = set(new)
    for pair in op.pairs:
        plan = plans.get(pair)
        if pair in fresh:
            hub.follow(session, pair)
        if plan is not None and pair in fresh:
            hub.counters["recoveries"] += 1
            hub.counters["replayed_deltas"] += len(plan)
            out += [(pair, message) for message in plan]
            head = hub.channels[pair].replica.position
            if head is not None:  # replayed up to the replica's head: pending deltas are not for it
                hub.fanout.floor(session, pair, head.seq)
            continue
        if pair in plans:
            hub.counters["recovery_misses"] += 1
        snapshot = hub.snapshot_for(session, pair)  # a repeated subscribe re-synchronises the pair
        if snapshot is not None:
            out.append((pair, snapshot))
    _send_answer(hub, session, out)
    if not session.lagging:
        hub.fanout.join(session)


def _send_answer(hub: Hub, session: Subscriber, out: list[tuple[str | None, bytes]]) -> None:
    """Write the answer in frames of at most ``PACK_FRAME_BYTES``, stopping at the first that
    makes the client stale: the pairs not written yet are owed a snapshot when it drains
    (``gateway.slow``). So a client that does not read holds at most one frame beyond the
    high-water mark, not every snapshot of a 100-pair subscribe (2.5 MB)."""
    start = 0
    for run in chunk_frames([message for _pair, message in out], PACK_FRAME_BYTES):
        session.send(pack_frame(run))
        start += len(run)
        if session.lagging and start < len(out):
            for pair, _message in out[start:]:
                if pair is not None:
                    session.owe_snapshot(pair)
            hub.counters["answers_cut"] += 1
            return


def unsubscribe(hub: Hub, session: Subscriber, op: Unsubscribe) -> None:
    hub.drop_pairs(session, op.pairs)
    if not session.lagging:
        hub.fanout.join(session)  # a smaller set: another group (or none)
    hub.counters["unsubscribes"] += 1
    session.send(encode_ack(Ack("unsubscribed", op.pairs, op.id)))


def resync(hub: Hub, session: Subscriber, op: Resync) -> None:
    if op.pair not in session.pairs:
        raise ProtocolError("bad_request", f"not subscribed to {op.pair[:40]!r}", op.id)
    hub.counters["resyncs"] += 1
    hub.send_snapshot(session, op.pair)
