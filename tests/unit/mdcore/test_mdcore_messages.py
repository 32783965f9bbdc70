"""mdcore.messages: the wire protocol's messages as immutable values.

How each is encoded and decoded is ``test_mdcore_codec.py``'s; here, the values themselves.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest

from mdcore.messages import (
    Ack,
    ClientOp,
    Delta,
    ErrorMessage,
    Ping,
    Pong,
    Resync,
    ServerMessage,
    Snapshot,
    StreamPosition,
    Subscribe,
    UnknownMessage,
    Unsubscribe,
)


def test_a_stream_position_is_an_epoch_seq_tuple() -> None:
    position = StreamPosition("e1", 7)
    assert position == ("e1", 7) and (position.epoch, position.seq) == ("e1", 7)
    epoch, seq = position
    assert (epoch, seq) == ("e1", 7)
    assert StreamPosition("e1", 7) != StreamPosition("e1", 8) and hash(position) == hash(("e1", 7))


@pytest.mark.parametrize("cls", [*typing.get_args(ServerMessage), *typing.get_args(ClientOp)])
def test_every_message_is_frozen(cls: type) -> None:
    fields = dataclasses.fields(cls)
    values = {f.name: None for f in fields}
    message = cls(**values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(message, fields[0].name, "changed")
    assert not hasattr(message, "__dict__")  # slots: many of them live in memory at once


def test_the_unions_name_each_direction_and_no_message_is_in_both() -> None:
    server = set(typing.get_args(ServerMessage))
    client = set(typing.get_args(ClientOp))
    assert server == {Snapshot, Delta, Ack, Pong, ErrorMessage, UnknownMessage}
    assert client == {Subscribe, Unsubscribe, Resync, Ping}
    assert not server & client


def test_optional_fields_default_to_nothing() -> None:
    assert Ack("subscribed", ("BTC-USD",)) == Ack("subscribed", ("BTC-USD",), None, None)
    assert Pong().id is None and Ping().id is None and ErrorMessage("bad", "m").id is None
    assert Resync("BTC-USD").id is None and Unsubscribe(("BTC-USD",)).id is None
    first, second = Subscribe(("BTC-USD",)), Subscribe(("BTC-USD",))
    assert first.since == {} and first.since is not second.since  # each its own (a default_factory)


def test_a_delta_carries_the_window_close_and_the_earliest_exchange_time() -> None:
    delta = Delta("BTC-USD", "e1", 3, 2_000, 1_000, [["1.00", "2"]], [], 12)
    assert (delta.ts, delta.xts, delta.checksum) == (2_000, 1_000, 12)
    assert delta == Delta("BTC-USD", "e1", 3, 2_000, 1_000, [["1.00", "2"]], [], 12)
    snapshot = Snapshot("BTC-USD", "e1", 3, 2_000, [["1.00", "2"]], [], 12)
    assert snapshot != delta and not hasattr(snapshot, "xts")
