"""The dialect's view of the hub: the real adapter and the tests' fake hub are both a ``HubPort``.

:class:`gateway.binance.dialect.HubPort` states what the Binance dialect needs of the hub;
:class:`gateway.dialect_port.HubDialectPort` is the real one and the dialect's unit tests run
on ``FakeHub``. A fake that lost a member, or kept an old signature, would let those tests
pass against a hub that no longer exists: this fails first.
"""

from __future__ import annotations

import inspect

import pytest

from gateway.binance.dialect import HubPort
from gateway.dialect_port import HubDialectPort
from tests.protocol_check import parameters, protocol_members
from tests.unit.gateway.binance_dialect_stack import FakeHub


@pytest.mark.parametrize("implementation", [HubDialectPort, FakeHub])
def test_every_member_of_the_port_exists_with_the_same_signature(implementation: type) -> None:
    members = protocol_members(HubPort)
    assert {"offered_pairs", "want", "unwant", "live_book", "load_book"} <= set(members)
    for name, declared in members.items():
        assert hasattr(implementation, name), f"{implementation.__name__} has no {name!r}"
        if callable(declared) and not isinstance(declared, property):
            real = getattr(implementation, name)
            assert parameters(real) == parameters(declared), name
            assert inspect.iscoroutinefunction(real) == inspect.iscoroutinefunction(declared), name
