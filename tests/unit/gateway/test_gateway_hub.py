"""gateway.hub: what arrives from the store, and what is not a delta."""

from __future__ import annotations

import pytest

from tests.unit.gateway.gateway_fakes import live_replica, make_hub


@pytest.mark.parametrize(
    "payload", [b"[]", b"null", b"1", b"{}", b'{"type":"delta"}', b"\xff", b'{"type":"delta']
)
async def test_a_message_from_redis_that_is_not_a_delta_is_counted_and_ignored(payload) -> None:
    hub, _link, stream = make_hub()
    live_replica(hub, stream, at=20, recent_from=16)
    hub.on_message("ETH-USD", payload)  # must not raise into the Pub/Sub reader (it reconnected)
    assert hub.counters["redis_bad_messages"] == 1
    hub.on_message("ETH-USD", stream.delta(21))
    assert hub.channels["ETH-USD"].replica.local.seq == 21
