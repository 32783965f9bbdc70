"""sequencing: older -> stale, next -> apply, jump or new epoch -> gap."""

from __future__ import annotations

import pytest

from mdcore.sequencing import Verdict, classify


@pytest.mark.parametrize(
    ("last_epoch", "last_seq", "epoch", "seq", "verdict"),
    [
        ("e1", 10, "e1", 11, Verdict.NEXT),
        ("e1", 0, "e1", 1, Verdict.NEXT),
        ("e1", 10, "e1", 10, Verdict.STALE),
        ("e1", 10, "e1", 3, Verdict.STALE),
        ("e1", 10, "e1", 0, Verdict.STALE),
        ("e1", 10, "e1", 12, Verdict.GAP),
        ("e1", 10, "e1", 1000, Verdict.GAP),
        ("e1", 10, "e2", 11, Verdict.GAP),  # a new epoch is a jump even at the "next" seq
        ("e1", 10, "e2", 5, Verdict.GAP),  # ... and never "older"
        ("e1", 10, "e2", 10, Verdict.GAP),
        (None, 0, "e1", 1, Verdict.GAP),  # no snapshot yet: nothing can be applied
        (None, 0, "e1", 0, Verdict.GAP),
    ],
)
def test_classify(last_epoch, last_seq, epoch, seq, verdict) -> None:
    assert classify(last_epoch, last_seq, epoch, seq) is verdict
