"""Outbox: ops in FIFO order, and at most one resync per pair waiting.

The property test runs random sequences of BookSet's calls against a plain list.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clients.outbox import Outbox
from mdcore.messages import Ping, Resync, Subscribe, Unsubscribe

PAIRS = ("BTC-USD", "ETH-USD", "SOL-USD")

calls = st.one_of(
    st.tuples(st.just("add_resync"), st.sampled_from(PAIRS)),
    st.tuples(st.just("extend"), st.sampled_from(["ping", "subscribe", "unsubscribe"])),
    st.tuples(st.just("pop"), st.none()),
    st.tuples(st.just("drop_resyncs"), st.sets(st.sampled_from(PAIRS))),
    st.tuples(st.just("take_all"), st.none()),
    st.tuples(st.just("clear"), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(calls, max_size=40))
def test_fifo_with_one_resync_per_pair_against_a_plain_list(script):
    box, model = Outbox(), []
    ids = iter(range(1, 10_000))
    for name, arg in script:
        if name == "add_resync":
            request_id = next(ids)
            box.add_resync(arg, request_id)
            if not any(isinstance(op, Resync) and op.pair == arg for op in model):
                model.append(Resync(arg, request_id))
        elif name == "extend":
            kind = {"ping": Ping, "subscribe": Subscribe, "unsubscribe": Unsubscribe}[arg]
            op = kind(next(ids)) if kind is Ping else kind(PAIRS[:2], next(ids))
            box.extend([op])
            model.append(op)
        elif name == "pop":
            assert box.pop() == (model.pop(0) if model else None)
        elif name == "drop_resyncs":
            box.drop_resyncs(arg)
            model = [op for op in model if not (isinstance(op, Resync) and op.pair in arg)]
        elif name == "take_all":
            assert box.take_all() == model
            model = []
        else:
            box.clear()
            model = []
        assert len(box) == len(model)
        for pair in PAIRS:
            waiting = [op for op in model if isinstance(op, Resync) and op.pair == pair]
            assert len(waiting) <= 1
            assert box.has_resync(pair) == bool(waiting)
    assert box.take_all() == model


def test_a_second_resync_for_a_waiting_pair_is_not_queued():
    box = Outbox()
    box.add_resync("BTC-USD", 1)
    box.extend([Ping(2)])
    box.add_resync("BTC-USD", 3)
    box.add_resync("ETH-USD", 4)
    assert box.take_all() == [Resync("BTC-USD", 1), Ping(2), Resync("ETH-USD", 4)]


def test_once_its_resync_is_sent_a_pair_may_be_asked_for_again():
    box = Outbox()
    box.add_resync("BTC-USD", 1)
    assert box.pop() == Resync("BTC-USD", 1)
    assert not box.has_resync("BTC-USD")
    box.add_resync("BTC-USD", 2)
    assert box.pop() == Resync("BTC-USD", 2)


def test_a_resync_queued_with_extend_counts_as_waiting():
    box = Outbox()
    box.extend([Subscribe(("BTC-USD",), 1), Resync("BTC-USD", 2)])
    assert box.has_resync("BTC-USD")
    box.add_resync("BTC-USD", 3)
    assert box.take_all() == [Subscribe(("BTC-USD",), 1), Resync("BTC-USD", 2)]


def test_dropping_resyncs_keeps_every_other_op_in_order():
    box = Outbox()
    box.extend([Ping(1)])
    box.add_resync("BTC-USD", 2)
    box.add_resync("ETH-USD", 3)
    box.extend([Ping(4)])
    box.drop_resyncs(["BTC-USD", "SOL-USD"])
    assert not box.has_resync("BTC-USD") and box.has_resync("ETH-USD")
    assert box.take_all() == [Ping(1), Resync("ETH-USD", 3), Ping(4)]


def test_take_all_and_clear_empty_it():
    box = Outbox()
    box.add_resync("BTC-USD", 1)
    assert box.take_all() == [Resync("BTC-USD", 1)]
    assert len(box) == 0 and box.pop() is None and not box.has_resync("BTC-USD")
    box.add_resync("BTC-USD", 2)
    box.clear()
    assert len(box) == 0 and not box.has_resync("BTC-USD")


def test_extend_does_not_queue_a_second_resync_for_a_waiting_pair():
    box = Outbox()
    box.extend([Resync("BTC-USD", 1)])
    box.extend([Resync("BTC-USD", 2)])
    assert box.take_all() == [Resync("BTC-USD", 1)]
