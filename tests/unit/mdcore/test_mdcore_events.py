"""events: the feed's Kafka value either validates whole or is rejected with InvalidEventError."""

from __future__ import annotations

import orjson
import pytest

from mdcore.errors import InvalidEventError, InvalidNumberError, UnknownPairError
from mdcore.events import ExchangeEvent, decode_event, encode_event
from mdcore.instruments import instrument

BTC = instrument("BTC-USD")
VALID = {
    "pair": "BTC-USD",
    "xseq": 17,
    "xts": 1_700_000_000_000_000_000,
    "changes": [["b", "64000.10", "1.25"]],
}


def with_(**fields) -> bytes:
    return orjson.dumps({**VALID, **fields})


def without(key: str) -> bytes:
    return orjson.dumps({k: v for k, v in VALID.items() if k != key})


def test_valid_event_decodes_to_integer_units() -> None:
    raw = with_(changes=[["b", "64000.10", "1.25"], ["a", "64000.20", "0"], ["a", "64000.30", "0.00001"]])
    assert decode_event(raw) == ExchangeEvent(
        "BTC-USD",
        17,
        1_700_000_000_000_000_000,
        (("b", 6400010, 125000), ("a", 6400020, 0), ("a", 6400030, 1)),
    )


def test_decode_accepts_str_and_zero_xseq() -> None:
    assert decode_event(with_(xseq=0, xts=0).decode()).xseq == 0


def test_encode_then_decode_round_trips() -> None:
    raw = encode_event("ETH-USD", 3, 99, [("a", "3000.01", "2.5000"), ("b", "2999.99", "0")])
    assert orjson.loads(raw) == {
        "pair": "ETH-USD",
        "xseq": 3,
        "xts": 99,
        "changes": [["a", "3000.01", "2.5000"], ["b", "2999.99", "0"]],
    }
    assert decode_event(raw) == ExchangeEvent("ETH-USD", 3, 99, (("a", 300001, 25000), ("b", 299999, 0)))


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", InvalidEventError),
        (b"{not json", InvalidEventError),
        (b"\xff", InvalidEventError),
        (b"[1, 2]", InvalidEventError),
        (b'"BTC-USD"', InvalidEventError),
        (b"null", InvalidEventError),
        (without("pair"), InvalidEventError),
        (without("xseq"), InvalidEventError),
        (without("xts"), InvalidEventError),
        (without("changes"), InvalidEventError),
        (with_(pair="FOO-USD"), UnknownPairError),
        (with_(pair=None), UnknownPairError),
        (with_(pair=["BTC-USD"]), UnknownPairError),  # unhashable: must not be a TypeError
        (with_(pair={"BTC-USD": 1}), UnknownPairError),
        (with_(xseq=True), InvalidEventError),
        (with_(xseq=False), InvalidEventError),
        (with_(xseq=-1), InvalidEventError),
        (with_(xseq=1.0), InvalidEventError),
        (with_(xseq="17"), InvalidEventError),
        (with_(xts=True), InvalidEventError),
        (with_(xts=-5), InvalidEventError),
        (with_(changes=[]), InvalidEventError),
        (with_(changes={}), InvalidEventError),
        (with_(changes="b,1,1"), InvalidEventError),
        (with_(changes=[["b", "64000.10"]]), InvalidEventError),
        (with_(changes=[["b", "64000.10", "1", "x"]]), InvalidEventError),
        (with_(changes=[{"side": "b"}]), InvalidEventError),
        (with_(changes=["b"]), InvalidEventError),
        (with_(changes=[["x", "64000.10", "1"]]), InvalidEventError),
        (with_(changes=[["bid", "64000.10", "1"]]), InvalidEventError),
        (with_(changes=[[["b"], "64000.10", "1"]]), InvalidEventError),
        (with_(changes=[["b", "64000.10", "-1"]]), InvalidNumberError),
        (with_(changes=[["b", "-64000.10", "1"]]), InvalidNumberError),
        (with_(changes=[["b", "64000.10", "abc"]]), InvalidNumberError),
        (with_(changes=[["b", "64000.10", "1e3"]]), InvalidNumberError),
        (with_(changes=[["b", 64000.1, "1"]]), InvalidNumberError),
        (with_(changes=[["b", "64000.10", 1]]), InvalidNumberError),
        (with_(changes=[["b", "64000.10", "NaN"]]), InvalidNumberError),
        (with_(changes=[["b", "64000.101", "1"]]), InvalidNumberError),  # off the tick grid
        (with_(changes=[["b", "64000.10", "0.000001"]]), InvalidNumberError),  # off the lot grid
        (with_(changes=[["b", "0", "1"]]), InvalidNumberError),  # a price must be positive
        (with_(changes=[["b", "9" * 5000, "1"]]), InvalidNumberError),
    ],
)
def test_decode_rejects(raw, error) -> None:
    with pytest.raises(error):
        decode_event(raw)


def test_one_bad_change_rejects_the_whole_event() -> None:
    raw = with_(changes=[["b", "64000.10", "1"], ["a", "64000.20", "bad"]])
    with pytest.raises(InvalidNumberError):
        decode_event(raw)
