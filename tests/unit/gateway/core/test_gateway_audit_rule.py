"""gateway.core.audit_rule: has a quiet replica missed a message, or is it only quiet?

The rule compares the replica's position with what Redis held one audit ago (``mark``) and
holds now (``stored``): deltas in flight take milliseconds, audits are seconds apart, so only
a replica still behind the *previous* audit's position has lost something.
"""

from __future__ import annotations

import pytest

from gateway.core.audit_rule import missed_something
from mdcore.messages import StreamPosition as P


@pytest.mark.parametrize(
    ("no_data", "pos", "mark", "stored", "missed", "why"),
    [
        # no mark yet: the first audit only records where Redis stands
        (False, P("e", 1), None, P("e", 9), False, "first audit: nothing to compare with"),
        (True, None, None, P("e", 9), False, "first audit, even with no stream seen here"),
        # the replica has seen no stream at all, yet one existed an audit ago
        (True, None, P("e", 1), P("e", 1), True, "a stream exists since the last audit, no delta came"),
        # not no_data but no position (loading): the catch-up under way will bring it up
        (False, None, P("e", 5), P("e", 6), False, "no position to judge yet"),
        # same epoch as the mark: behind it means a lost delta, at or past it means in time
        (False, P("e", 4), P("e", 5), P("e", 5), True, "one behind the previous audit's position"),
        (False, P("e", 5), P("e", 5), P("e", 9), False, "at the mark: the rest is in flight"),
        (False, P("e", 6), P("e", 5), P("e", 9), False, "past the mark"),
        (False, P("e", 0), P("e", 5), P("f", 1), True, "same epoch as the mark: judged by seq alone"),
        # another epoch than the mark: behind only once Redis stayed in the mark's epoch
        (False, P("old", 50), P("new", 3), P("new", 4), True, "Redis in the new epoch for two audits"),
        (False, P("old", 50), P("new", 3), P("newer", 1), False, "Redis changed epoch again since"),
        (False, P("new", 1), P("old", 50), P("new", 2), False, "the replica already in Redis' new epoch"),
    ],
)  # fmt: skip
def test_missed_something(
    no_data: bool, pos: P | None, mark: P | None, stored: P, missed: bool, why: str
) -> None:
    assert missed_something(no_data, pos, mark, stored) is missed, why


def test_an_epoch_change_is_judged_by_two_audits_not_one() -> None:
    """A replica of the old epoch, audited as md_service restarts into a new one."""
    replica = P("old", 50)
    first = P("new", 1)  # audit 1: Redis just entered the new epoch; it becomes the mark
    assert not missed_something(False, replica, mark=P("old", 50), stored=first)
    # audit 2: Redis is still in the new epoch, and the replica never moved: it missed the switch
    assert missed_something(False, replica, mark=first, stored=P("new", 2))
