"""Time to heal: after a fault ended, when every pair published again and every client was
back on current data; and how long each pair was dark. Pure, over the two logs.

A client counts as healed for a pair at its first update carrying a seq *published after
the fault ended*: a snapshot or delta of older data (a replay, a book kept through a
reconnect) does not count, a resync's snapshot of new data does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bookcast.chaos.publications import PublicationLog
from bookcast.chaos.updates import UpdateLog


@dataclass(frozen=True, slots=True)
class Heal:
    """When (monotonic) a fault had healed, None while anything is still missing."""

    healed_at: float | None
    pairs_at: float | None  # the last pair's first publication after the fault
    clients_at: float | None  # the last (client, pair)'s first current update
    waiting_for: str  # what healed last, or what is still missing

    def seconds_after(self, t: float) -> float | None:
        return None if self.healed_at is None else max(0.0, self.healed_at - t)


def client_healed_at(
    client: int, pair: str, after: float, pubs: PublicationLog, updates: UpdateLog
) -> float | None:
    """The time of the client's first update of ``pair`` with data published at or after ``after``."""
    for t, epoch, seq in updates.since(client, pair, after):
        published = pubs.published_at(pair, epoch, seq)
        if published is not None and published >= after:
            return t
    return None


def heal_of(
    after: float,
    pairs: Sequence[str],
    subscriptions: Mapping[int, Sequence[str]],
    pubs: PublicationLog,
    updates: UpdateLog,
) -> Heal:
    """Whether (and when) every pair and every client's every pair is back after ``after``."""
    pairs_at, last_pair = after, ""
    for pair in pairs:
        t = pubs.first_after(pair, after)
        if t is None:
            return Heal(None, None, None, f"{pair} to publish")
        if t >= pairs_at:
            pairs_at, last_pair = t, pair
    clients_at, last_client = after, ""
    for client, followed in subscriptions.items():
        for pair in followed:
            t = client_healed_at(client, pair, after, pubs, updates)
            if t is None:
                return Heal(None, pairs_at, None, f"client {client} {pair}")
            if t >= clients_at:
                clients_at, last_client = t, f"client {client} {pair}"
    last = f"pair {last_pair}" if pairs_at >= clients_at else last_client
    return Heal(max(pairs_at, clients_at), pairs_at, clients_at, last)


@dataclass(frozen=True, slots=True)
class Dark:
    """A pair's longest stretch without a publication during the faults."""

    pair: str
    seconds: float
    since: float  # monotonic start of that stretch


def darkest(pubs: PublicationLog, pairs: Sequence[str], start: float, end: float) -> list[Dark]:
    """Each pair's longest dark stretch within ``[start, end]``, darkest first."""
    out = [Dark(pair, *pubs.longest_dark(pair, start, end)) for pair in pairs]
    return sorted(out, key=lambda d: -d.seconds)
