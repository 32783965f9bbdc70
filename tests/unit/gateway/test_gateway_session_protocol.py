"""The real session and the tests' fake both are what the gateway needs of a session.

``gateway.session.Subscriber`` is the one statement of that need; the hub, the fan-out and
``gateway.slow`` are typed against it. A fake that lost a member, or kept an old signature,
would let the unit tests pass against a session that no longer exists: this fails first.
"""

from __future__ import annotations

import pytest

from gateway.session import ClientSession, SessionState, Subscriber
from tests.protocol_check import parameters, protocol_members
from tests.unit.gateway.gateway_fakes import FakeSession


@pytest.mark.parametrize("implementation", [ClientSession, FakeSession])
def test_every_member_of_the_protocol_exists_with_the_same_signature(implementation: type) -> None:
    probe = FakeSession() if implementation is FakeSession else implementation
    for name, declared in protocol_members(Subscriber).items():
        assert hasattr(probe, name) or name in getattr(implementation, "__slots__", ()), (
            f"{implementation.__name__} has no {name!r}"
        )
        if callable(declared) and not isinstance(declared, property):
            assert parameters(getattr(implementation, name)) == parameters(declared), name


def test_a_session_moves_live_stale_live_then_closing_for_good() -> None:
    session = FakeSession("ETH-USD")
    assert session.state is SessionState.LIVE and not session.lagging
    assert session.go_stale({"ETH-USD": None}, 5.0)
    assert session.lagging and session.lag_since == 5.0
    assert not session.go_stale({}, 6.0)  # already stale: the first marks stand
    assert session.come_back() == {"ETH-USD": None} and session.state is SessionState.LIVE
    session.closing()
    assert session.state is SessionState.CLOSING and not session.open
    assert not session.go_stale({}, 7.0) and session.state is SessionState.CLOSING
    session.come_back()
    assert session.state is SessionState.CLOSING  # nothing brings a closing session back
