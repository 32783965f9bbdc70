"""Intake: Kafka messages in, books updated; every kind of bad input counted and never applied."""

from __future__ import annotations

import logging

import orjson
import pytest

from md_service.counters import MdCounters
from md_service.intake import Intake
from md_service.ownership import Ownership
from md_service.pair_stream import PairStream
from mdcore.book import OrderBook
from mdcore.events import encode_event
from mdcore.local_book import LocalBook
from mdcore.messages import Snapshot
from mdcore.redis_layout import StoredState
from mdruntime.log_throttle import LogThrottle
from tests.kafka_fakes import FakeMessage

PAIR = "BTC-USD"


class FakeSource:
    def __init__(self) -> None:
        self.rewound: list[int] = []

    def rewind(self, partition: int) -> None:
        self.rewound.append(partition)


def ev(xseq: int, *changes: tuple[str, str, str], pair: str = PAIR) -> bytes:
    return encode_event(pair, xseq, 1_000 + xseq % 1_000_000, changes or [("b", "100.00", "1")])


class Rig:
    """An Intake over partition 0 (and 1), with Redis replaced by a dict of stored streams."""

    def __init__(self, stored=None, homes=None, home: int = 0) -> None:
        self.ownership = Ownership()
        self.ownership.own([0, 1], "me/1")
        self.counters = MdCounters()
        self.source = FakeSource()
        self.stored = stored or {}
        self.homes = homes or {}
        self.intake = Intake(
            self.ownership, self.counters, self.load, self.source, clock_ns=lambda: 7_000_000,
            home_of=lambda pair: self.homes.get(pair, home),  # each pair's partition
        )  # fmt: skip
        self.offset = 0

    def load(self, pair):
        return self.stored.get(pair, (None, None))

    def feed(self, *values, partition: int = 0, **kwargs) -> None:
        msgs = []
        for value in values:
            msgs.append(FakeMessage(value, partition=partition, offset=self.offset, **kwargs))
            self.offset += 1
        self.intake.handle_batch(msgs)

    def book(self, pair: str = PAIR) -> OrderBook:
        return self.ownership.streams[pair].book


POISON = [
    (b"not json", "not_json"),
    (None, "empty"),
    (b"[]", "not_object"),
    (orjson.dumps({"pair": PAIR, "xseq": 2, "xts": 1}), "missing_field"),
    (encode_event(PAIR, 2, 1, [("x", "100.00", "1")]), "bad_side"),
    (encode_event(PAIR, 2, 1, [("b", "100.00", "-1")]), "bad_number"),
    (encode_event(PAIR, 2, 1, [("b", "-100.00", "1")]), "bad_number"),
    (encode_event(PAIR, 2, 1, [("b", "100.00", "lots")]), "bad_number"),
    (encode_event(PAIR, 2, 1, [("b", "100.001", "1")]), "bad_number"),  # off the tick grid
    (encode_event("FOO-USD", 2, 1, [("b", "100.00", "1")]), "unknown_pair"),
]


@pytest.mark.parametrize(("value", "kind"), POISON)
def test_poison_is_counted_by_kind_and_leaves_the_book_alone(value, kind) -> None:
    rig = Rig()
    rig.feed(ev(1, ("b", "100.00", "1"), ("a", "101.00", "2")))
    before = rig.book().copy()
    rig.feed(value)
    rig.feed(ev(2, ("b", "100.00", "3")))  # the stream goes on after the poison
    assert rig.counters.invalid == {kind: 1} and rig.counters.events_invalid == 1
    assert rig.counters.events_applied == 2
    before.set_level("b", 10000, 300000)
    assert rig.book() == before


def test_wrong_key_and_wrong_partition_are_rejected() -> None:
    rig = Rig(homes={"ETH-USD": 1})
    rig.feed(ev(1))
    rig.feed(ev(2, ("b", "100.00", "9")), key=b"ETH-USD")  # key is not the pair
    rig.feed(ev(2, ("b", "100.00", "9")), partition=1)  # BTC-USD lives in partition 0
    rig.feed(ev(1, pair="ETH-USD"), key=b"ETH-USD")  # ETH-USD lives in partition 1
    assert rig.counters.invalid == {"wrong_key": 1, "wrong_partition": 2}
    assert rig.book().qty("b", 10000) == 100000 and "ETH-USD" not in rig.ownership.streams


def test_a_new_pair_with_the_first_event_starts_a_new_epoch_publishing_its_whole_book() -> None:
    rig = Rig()
    rig.feed(ev(1))
    stream = rig.ownership.streams[PAIR]
    assert stream.full_next and stream.stored is None and stream.epoch.startswith("7-")
    assert rig.counters.epochs_started == 1 and rig.ownership.partitions[0].pairs == {PAIR}


def test_a_stored_pair_resumes_and_skips_what_it_already_applied() -> None:
    local = LocalBook(PAIR)
    local.book.set_level("b", 10000, 5)
    rig = Rig(stored={PAIR: (StoredState("e9", 12, 40, 10), local)})
    rig.feed(ev(39), ev(40), ev(41, ("a", "101.00", "1")))
    stream = rig.ownership.streams[PAIR]
    assert (stream.epoch, stream.seq, stream.xseq, stream.stored) == ("e9", 12, 41, ("e9", 12))
    assert rig.counters.events_duplicate == 2 and rig.counters.events_applied == 1


def test_a_pair_redis_lost_rewinds_its_partition_once() -> None:
    rig = Rig()
    rig.feed(ev(5), ev(6), b"junk")
    assert rig.source.rewound == [0] and PAIR not in rig.ownership.streams
    # The rest of the batch was read before the rewind: skipped, it comes again.
    assert rig.counters.replays == 1 and rig.counters.invalid == {}
    assert rig.ownership.partitions[0].position is None  # no offset may be stored meanwhile
    rig.feed(ev(1), ev(2), ev(3))  # the re-read from the start rebuilds the book
    assert rig.ownership.streams[PAIR].xseq == 3


def test_a_rewind_skips_the_rest_of_its_batch_across_the_chunks_it_is_handled_in() -> None:
    rig = Rig()
    msgs = [FakeMessage(value, partition=0, offset=i) for i, value in enumerate([ev(5), ev(6), ev(7)])]
    skipping: set[int] = set()
    rig.intake.handle_batch(msgs[:1], skipping)  # the loop hands one consumed batch over in chunks
    rig.intake.handle_batch(msgs[1:], skipping)
    assert rig.source.rewound == [0] and skipping == {0}
    assert PAIR not in rig.ownership.streams  # ev(6), ev(7) came before the rewind: stale, not applied
    assert rig.ownership.partitions[0].position is None


def test_after_one_rewind_a_pair_starts_from_what_the_partition_holds() -> None:
    rig = Rig()
    rig.feed(ev(5))
    rig.feed(ev(5), ev(6))  # the partition's start holds nothing earlier: accept it
    assert rig.source.rewound == [0] and rig.ownership.streams[PAIR].xseq == 6


def test_unusable_stored_stream_is_replaced_with_a_cas_on_its_position() -> None:
    rig = Rig(stored={PAIR: (StoredState("bad", 30, 50, 30), None)})
    rig.feed(ev(51))
    assert rig.source.rewound == [0]
    rig.feed(ev(1))
    assert rig.ownership.streams[PAIR].stored == ("bad", 30)


def test_messages_of_partitions_not_owned_are_skipped() -> None:
    rig = Rig()
    rig.ownership.drop(1)
    rig.feed(ev(1), partition=1)
    rig.feed(ev(1), partition=5)
    assert rig.counters.events_unowned == 2 and not rig.ownership.streams


def test_a_followed_partition_keeps_books_warm_and_never_rereads() -> None:
    stored = LocalBook(PAIR)
    stored.load_snapshot(Snapshot(PAIR, "e1", 4, 0, [], [], 0))
    rig = Rig(stored={PAIR: (StoredState("e1", 4, 5, 4), stored)}, home=1)
    rig.ownership.follow(1, position=0)
    rig.feed(ev(6, ("b", "100.00", "6")), partition=1)  # connects to the stored xseq 5: warm
    assert rig.book().qty("b", 10000) == 600000 and not rig.ownership.partitions[1].cold
    rig.feed(ev(1, pair="ETH-USD"), key=b"ETH-USD", partition=1)  # a pair's first event: a book from scratch
    assert "ETH-USD" in rig.ownership.streams and not rig.ownership.partitions[1].cold
    rig.feed(ev(9, pair="SOL-USD"), key=b"SOL-USD", partition=1)  # Redis has nothing before 9: cold only
    assert "SOL-USD" not in rig.ownership.streams and rig.ownership.partitions[1].cold
    assert rig.source.rewound == [] and rig.counters.replays == 0


def test_a_follower_whose_stored_start_is_behind_its_events_can_only_take_over_cold() -> None:
    stored = LocalBook(PAIR)
    stored.load_snapshot(Snapshot(PAIR, "e1", 4, 0, [], [], 0))
    rig = Rig(stored={PAIR: (StoredState("e1", 4, 5, 4), stored)}, home=1)
    rig.ownership.follow(1, position=0)
    rig.feed(ev(8), partition=1)  # xseq 6 and 7 went by before this follower knew the pair
    assert rig.ownership.partitions[1].cold and rig.source.rewound == []


def test_kafka_errors_are_counted_not_applied() -> None:
    class Err:
        def code(self):
            return -1

        def str(self):
            return "broker down"

    rig = Rig()
    rig.feed(b"x", error=Err())
    assert rig.counters.kafka_errors == 1 and rig.counters.events_invalid == 0
    assert rig.intake.last_kafka_error == "broker down"


def test_positions_follow_the_messages_handled() -> None:
    rig = Rig()
    rig.feed(ev(1), ev(2), b"junk")
    assert rig.ownership.partitions[0].position == 3


def test_reordered_and_duplicated_redelivery() -> None:
    rig = Rig()
    rig.feed(ev(1, ("b", "100.00", "1")), ev(2, ("b", "100.00", "2")), ev(4, ("b", "100.00", "4")))
    rig.feed(ev(3, ("b", "100.00", "3")), ev(2, ("b", "100.00", "2")), ev(4, ("b", "100.00", "4")))
    c = rig.counters
    assert (c.events_applied, c.exchange_gaps, c.exchange_missing, c.events_late, c.events_duplicate) == (
        3, 1, 1, 1, 2,
    )  # fmt: skip
    assert rig.book().qty("b", 10000) == 400000


def test_restored_streams_keep_their_pair_list_per_partition() -> None:
    rig = Rig()
    rig.ownership.add_stream(PairStream("ETH-USD", "e", partition=1))
    assert rig.ownership.partitions[1].pairs == {"ETH-USD"}
    rig.ownership.drop(1)
    assert "ETH-USD" not in rig.ownership.streams


def test_a_garbled_xseq_is_poison_and_the_pair_keeps_going() -> None:
    # An xseq of 2**64-1 applied would make every later genuine event "late": the pair frozen.
    rig = Rig()
    rig.feed(ev(1, ("b", "100.00", "1")), ev(2, ("b", "100.00", "2")))
    rig.feed(ev(2**64 - 1, ("b", "100.00", "99")))
    rig.feed(ev(3, ("b", "100.00", "3")), ev(4, ("b", "100.00", "4")))
    stream = rig.ownership.streams[PAIR]
    assert stream.xseq == 4 and rig.book().qty("b", 10000) == 400000
    assert rig.counters.invalid == {"xseq_jump": 1} and rig.counters.events_late == 0
    assert rig.counters.events_applied == 4 and rig.counters.exchange_gaps == 0


def test_a_jump_up_to_the_bound_is_a_gap_beyond_it_poison() -> None:
    rig = Rig()
    rig.intake.max_xseq_jump = 100
    rig.feed(ev(1), ev(101, ("b", "100.00", "2")))  # 99 xseqs lost by the exchange: applied, counted
    rig.feed(ev(202, ("b", "100.00", "3")))  # 101 past 101: poison
    assert rig.ownership.streams[PAIR].xseq == 101 and rig.book().qty("b", 10000) == 200000
    assert (rig.counters.exchange_gaps, rig.counters.exchange_missing) == (1, 99)
    assert rig.counters.invalid == {"xseq_jump": 1}


def test_a_restored_pair_bounds_the_jump_from_its_stored_xseq() -> None:
    local = LocalBook(PAIR)
    rig = Rig(stored={PAIR: (StoredState("e9", 12, 40, 10), local)})
    rig.feed(ev(2**63))
    rig.feed(ev(41))
    assert rig.ownership.streams[PAIR].xseq == 41 and rig.counters.invalid == {"xseq_jump": 1}


def test_a_new_pair_whose_first_event_is_garbled_starts_with_the_genuine_one() -> None:
    rig = Rig()
    rig.feed(ev(2**64 - 1))  # no stored stream and not xseq 1: the partition is read again
    assert rig.source.rewound == [0]
    rig.feed(ev(2**64 - 1), ev(1), ev(2))  # the re-read meets the garbled event first
    assert rig.ownership.streams[PAIR].xseq == 2 and rig.counters.invalid == {"xseq_jump": 1}


def test_poison_floods_log_one_line_per_kind_per_interval(caplog) -> None:
    rig = Rig()
    now = [0.0]
    rig.intake.throttle = LogThrottle(logging.getLogger("md_service"), every=10.0, clock=lambda: now[0])
    rig.feed(ev(1), ev(3))  # xseq 2 never came: a gap
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="md_service"):
        rig.feed(*[ev(2**64 - 1)] * 500, *[ev(2)] * 500)  # garbled, then late: 1000 events
        now[0] = 11.0
        rig.feed(ev(2**64 - 1))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines  # one per kind, then one more after the interval
    assert "(499 more of this kind since the last such line, not logged)" in lines[2]
    assert rig.counters.invalid == {"xseq_jump": 501} and rig.counters.events_late == 1
    assert rig.counters.events_duplicate == 499


def test_a_pair_restored_in_a_partition_redis_lost_writes_of_continues_in_a_new_epoch() -> None:
    rig = Rig(stored={PAIR: (StoredState("e9", 12, 40, 10), LocalBook(PAIR))})
    rig.ownership.partitions[0].behind = True  # the claim found Redis behind our write marks
    rig.feed(ev(41))
    stream = rig.ownership.streams[PAIR]
    assert stream.epoch != "e9" and stream.full_next and stream.stored == ("e9", 12)
    assert stream.xseq == 41 and rig.counters.epochs_started == 1
