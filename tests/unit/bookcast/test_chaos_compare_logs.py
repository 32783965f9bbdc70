"""Comparing books level by level, and finding tracebacks in a tier's log."""

from __future__ import annotations

from bookcast.chaos.compare import diff_book
from bookcast.chaos.logscan import find_tracebacks

BIDS = [("100.00", "1.000"), ("99.00", "2.000")]
ASKS = [("101.00", "3.000")]


def test_equal_books_do_not_differ_whatever_the_sequence_type() -> None:
    assert (
        diff_book("client 1", "X", (BIDS, ASKS), ([list(b) for b in BIDS], [list(a) for a in ASKS])) is None
    )


def test_the_first_differing_level_is_named() -> None:
    found = diff_book("gateway-1 REST", "X", (BIDS, ASKS), (BIDS, [("101.00", "2.000")]))
    assert (
        found is not None
        and str(found) == "gateway-1 REST X: asks level 0: ('101.00', '2.000') instead of ('101.00', '3.000')"
    )


def test_a_missing_deep_level_is_a_difference_the_checksum_would_miss() -> None:
    deep = [(f"{100 - i}.00", "1.000") for i in range(40)]
    found = diff_book("client 2", "X", (deep, ASKS), (deep[:39], ASKS))
    assert found is not None and found.reason == "bids: 39 levels instead of 40"


LOG = """2026-01-01 md INFO md_service: started
2026-01-01 gateway ERROR gateway.handler: op failed
Traceback (most recent call last):
  File "x.py", line 1, in f
    raise KeyError("a")
KeyError: 'a'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "x.py", line 3, in g
    raise ValueError("b")
ValueError: b
2026-01-01 md WARNING librdkafka: a warning, not a traceback
Traceback (most recent call last):
  File "y.py", line 9, in h
TypeError: unhashable type: 'list'
"""


def test_each_traceback_counts_once_with_its_context_and_exception() -> None:
    found = find_tracebacks("gateway-1.1", LOG)
    assert [(t.context, t.exception) for t in found] == [
        ("2026-01-01 gateway ERROR gateway.handler: op failed", "KeyError: 'a'"),
        (
            "2026-01-01 md WARNING librdkafka: a warning, not a traceback",
            "TypeError: unhashable type: 'list'",
        ),
    ]
    assert str(found[0]).startswith("gateway-1.1: KeyError")
    assert find_tracebacks("feed.1", "all quiet\n") == []
