"""mdcore.errors: the tree its docstring draws is the classes' tree, and each error keeps its context."""

from __future__ import annotations

import re

import pytest

import mdcore.errors as errors
from mdcore.errors import (
    BookcastError,
    ChecksumMismatchError,
    DecodeError,
    IntegrityError,
    InvalidEventError,
    InvalidNumberError,
    ProtocolError,
    SequenceGapError,
    UnknownPairError,
)


def documented_tree() -> dict[str, str | None]:
    """Class name -> its documented parent, from the docstring's drawing (indentation = depth)."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        found = re.match(r"^((?:[ │]*[├└]── )?)([A-Z]\w*Error)\b", line)  # the root, or a branch
        if not found:
            continue
        depth, name = len(found.group(1)), found.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def actual_tree() -> dict[str, str | None]:
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, BookcastError)
    }
    return {
        name: next((b.__name__ for b in cls.__bases__ if issubclass(b, BookcastError)), None)
        for name, cls in classes.items()
    }


def test_the_documented_tree_is_the_class_tree() -> None:
    documented = documented_tree()
    assert len(documented) == 9  # the drawing was read, every line of it
    assert documented == actual_tree()


def test_the_errors_documented_as_value_errors_are() -> None:
    assert issubclass(DecodeError, ValueError)  # "also a ValueError"
    assert issubclass(InvalidEventError, ValueError) and issubclass(InvalidNumberError, ValueError)
    assert not issubclass(IntegrityError, ValueError) and not issubclass(ProtocolError, ValueError)


def test_an_invalid_event_has_a_stable_kind_by_class_or_by_call() -> None:
    assert InvalidEventError("x").kind == "invalid" and InvalidEventError("x", "not_json").kind == "not_json"
    assert (
        InvalidNumberError("x").kind == "bad_number"
        and InvalidNumberError("x", "bad_grid").kind == "bad_grid"
    )
    unknown = UnknownPairError("DOGE-XYZ")
    assert (
        unknown.kind == "unknown_pair"
        and unknown.pair == "DOGE-XYZ"
        and str(unknown) == "unknown pair 'DOGE-XYZ'"
    )
    assert InvalidEventError.kind == "invalid"  # a kind given to one error is not the class's


def test_a_protocol_error_carries_its_wire_code_and_request() -> None:
    err = ProtocolError("bad_request", "no pairs", request_id=7)
    assert (err.code, err.message, err.request_id, str(err)) == (
        "bad_request",
        "no pairs",
        7,
        "bad_request: no pairs",
    )


def test_integrity_errors_name_the_pair_and_what_was_expected() -> None:
    gap = SequenceGapError("BTC-USD", "e1", 5, "e1", 7)
    assert str(gap) == "BTC-USD: sequence gap: expected e1/5, received e1/7" and gap.pair == "BTC-USD"
    assert (gap.expected_epoch, gap.expected_seq, gap.epoch, gap.seq) == ("e1", 5, "e1", 7)
    assert "epoch changed" in str(SequenceGapError("BTC-USD", "e1", 5, "e2", 1))
    bad = ChecksumMismatchError("ETH-USD", 9, 111, 222)
    assert (bad.seq, bad.expected, bad.computed, bad.pair) == (9, 111, 222, "ETH-USD")
    assert str(bad) == "ETH-USD: checksum mismatch at seq 9: expected 111, computed 222"
    with pytest.raises(IntegrityError):
        raise bad
