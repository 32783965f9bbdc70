"""What was published, time to heal and dark stretches, from the two logs (no processes)."""

from __future__ import annotations

from bookcast.chaos.heal import darkest, heal_of
from bookcast.chaos.publications import PublicationLog
from bookcast.chaos.updates import UpdateLog

PAIRS = ("BTC-USD", "ETH-USD")


def published(*rows: tuple[str, str, int, float], digest: int = 0) -> PublicationLog:
    log = PublicationLog()
    for pair, epoch, seq, t in rows:
        log.add(pair, epoch, seq, digest or hash((pair, epoch, seq)), t)
    return log


def test_a_seq_published_twice_with_other_bytes_is_a_conflict_with_the_same_bytes_not() -> None:
    log = published(("BTC-USD", "e1", 1, 1.0), ("BTC-USD", "e1", 2, 1.1))
    log.add("BTC-USD", "e1", 2, hash(("BTC-USD", "e1", 2)), 1.2)  # the same bytes again
    log.add("BTC-USD", "e1", 1, 12345, 5.0)  # a zombie's seq 1
    assert log.same_duplicates == 1
    assert [(c.pair, c.epoch, c.seq, c.first_t, c.again_t) for c in log.conflicts] == [
        ("BTC-USD", "e1", 1, 1.0, 5.0)
    ]
    assert log.published_at("BTC-USD", "e1", 1) == 1.0  # the first one stands


def test_holes_inside_an_epoch_are_counted_a_new_epoch_is_not_a_hole() -> None:
    log = published(("BTC-USD", "e1", 1, 1.0), ("BTC-USD", "e1", 3, 1.1), ("BTC-USD", "e2", 1, 2.0))
    assert log.holes == 1 and log.epochs["BTC-USD"] == ["e1", "e2"]


def test_longest_dark_stretch_counts_the_edges() -> None:
    log = published(("BTC-USD", "e", 1, 2.0), ("BTC-USD", "e", 2, 2.5), ("BTC-USD", "e", 3, 9.0))
    assert log.longest_dark("BTC-USD", 0.0, 10.0) == (6.5, 2.5)
    assert log.longest_dark("BTC-USD", 9.5, 20.0) == (10.5, 9.5)  # nothing after the last one
    assert log.longest_dark("ETH-USD", 0.0, 4.0) == (4.0, 0.0)  # never published
    assert [d.pair for d in darkest(log, PAIRS, 0.0, 10.0)] == ["ETH-USD", "BTC-USD"]


def test_healed_when_every_pair_published_and_every_client_has_new_data() -> None:
    pubs = published(
        ("BTC-USD", "e", 1, 1.0), ("ETH-USD", "f", 1, 1.0),
        # the fault is lifted at 10.0
        ("BTC-USD", "e", 2, 10.5), ("ETH-USD", "f", 2, 11.0),
    )  # fmt: skip
    updates = UpdateLog()
    updates.add(0, "BTC-USD", "e", 1, 10.2)  # old data arriving after the fault: not healed by it
    updates.add(0, "BTC-USD", "e", 2, 10.6)
    updates.add(1, "ETH-USD", "f", 2, 12.0)
    heal = heal_of(10.0, PAIRS, {0: ("BTC-USD",), 1: ("ETH-USD",)}, pubs, updates)
    assert (heal.pairs_at, heal.clients_at, heal.healed_at) == (11.0, 12.0, 12.0)
    assert heal.waiting_for == "client 1 ETH-USD" and heal.seconds_after(10.0) == 2.0


def test_not_healed_while_a_pair_is_silent_or_a_client_has_only_old_data() -> None:
    pubs = published(("BTC-USD", "e", 1, 1.0), ("BTC-USD", "e", 2, 10.5))
    updates = UpdateLog()
    updates.add(0, "BTC-USD", "e", 1, 10.7)
    silent = heal_of(10.0, PAIRS, {0: ("BTC-USD",)}, pubs, updates)
    assert silent.healed_at is None and silent.waiting_for == "ETH-USD to publish"
    behind = heal_of(10.0, ("BTC-USD",), {0: ("BTC-USD",)}, pubs, updates)
    assert behind.healed_at is None and behind.waiting_for == "client 0 BTC-USD"
    assert behind.seconds_after(10.0) is None


def test_a_snapshot_of_a_new_epoch_heals_a_client() -> None:
    pubs = published(("BTC-USD", "old", 7, 1.0), ("BTC-USD", "new", 1, 10.4), ("BTC-USD", "new", 2, 10.5))
    updates = UpdateLog()
    updates.add(0, "BTC-USD", "new", 2, 10.9)  # the resync's snapshot, at seq 2
    heal = heal_of(10.0, ("BTC-USD",), {0: ("BTC-USD",)}, pubs, updates)
    assert heal.healed_at == 10.9 and updates.count == 1
    assert list(updates.since(0, "BTC-USD", 0.0)) == [(10.9, "new", 2)]
