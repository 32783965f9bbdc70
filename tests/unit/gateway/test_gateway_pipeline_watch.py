"""gateway.pipeline_watch: each applied delta's arrival, and md_service's heartbeat read from the bus.

The rules that turn both into verdicts are pure (tests/unit/gateway/core/test_gateway_freshness.py);
what /health makes of them is tests/unit/gateway/test_gateway_health.py. Here: what the watch
notes and reads. The hub runs on the in-memory store, with a fake status-bus client.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.pipeline_watch import PipelineWatch
from mdcore.status_bus import STATUS_VERSION, encode_status, index_key, status_key
from tests.unit.gateway.gateway_fakes import live_replica, make_hub

PREFIX = "bookcast"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class StatusBus:
    """The two reads the watch makes of the status bus: the index, then the statuses it names."""

    def __init__(self) -> None:
        self.values: dict[bytes, bytes | None] = {}
        self.fail: Exception | None = None
        self.mget_keys: list[list[bytes]] = []

    def put(self, kind: str, instance: str, body: dict | None, **fields: object) -> None:
        key = status_key(PREFIX, kind, instance).encode()
        self.values[key] = None if body is None else encode_status({**body, **fields})

    async def zrange(self, key: str, start: int, end: int) -> list[bytes]:
        if self.fail is not None:
            raise self.fail
        assert (key, start, end) == (index_key(PREFIX), 0, -1)
        return list(self.values)

    async def mget(self, keys: list[bytes]) -> list[bytes | None]:
        self.mget_keys.append(list(keys))
        return [self.values[k] for k in keys]


def md(instance: str, **links: str) -> dict:
    return {"v": STATUS_VERSION, "kind": "md", "instance": instance, **links}


def watched():
    hub, link, stream = make_hub()
    clock = Clock()
    bus = StatusBus()
    link.client = bus
    return hub, stream, PipelineWatch(hub, clock=clock), clock, bus


async def test_arrivals_are_noted_from_the_hubs_applied_deltas_and_reloads_are_not_arrivals() -> None:
    hub, stream, watch, clock, _bus = watched()
    assert watch.attach() is watch and watch.attach() is watch
    assert hub.listeners.count(watch) == 1  # attached once, however often asked
    replica = live_replica(hub, stream, at=20, recent_from=16)
    hub.on_message("ETH-USD", stream.delta(21))
    assert watch.gaps.last_arrival("ETH-USD") == 1000.0
    clock.now = 1002.5
    hub.on_message("ETH-USD", stream.delta(21))  # an old seq: dropped, not an arrival
    assert watch.gaps.last_arrival("ETH-USD") == 1000.0
    hub.on_message("ETH-USD", stream.delta(22))
    assert watch.gaps.last_arrival("ETH-USD") == 1002.5
    clock.now = 1010.0
    watch.on_reset("ETH-USD", replica.local)
    assert watch.gaps.last_arrival("ETH-USD") == 1002.5


async def test_only_md_services_live_statuses_are_read_and_one_working_instance_means_up() -> None:
    _hub, _stream, watch, _clock, bus = watched()
    bus.put("md", "a", md("a"), kafka="down")
    bus.put("md", "b", md("b"))
    bus.put("md", "gone", None)  # listed in the index, expired since
    bus.put("gateway", "g", {"v": STATUS_VERSION, "kind": "gateway"})
    await watch.poll()
    assert (bus.mget_keys[-1], watch.pipeline.state, watch.pipeline.instances) == (
        [status_key(PREFIX, "md", i).encode() for i in ("a", "b", "gone")],
        "up",
        2,
    )
    assert watch.pipeline.seen_at == 1000.0


async def test_md_services_that_cannot_work_or_are_gone_make_the_pipeline_down() -> None:
    _hub, _stream, watch, clock, bus = watched()
    await watch.poll()  # nothing on the bus, never seen: not known to be down
    assert watch.pipeline.state == "unknown" and bus.mget_keys == []
    bus.put("md", "a", md("a"), redis="down")
    await watch.poll()
    assert (watch.pipeline.state, watch.pipeline.reason) == ("down", "md_service reports redis down")
    bus.put("md", "a", md("a"))
    await watch.poll()
    assert watch.pipeline.state == "up"
    bus.values.clear()  # every status expired
    clock.now += 30.0
    await watch.poll()
    assert watch.pipeline.state == "down" and watch.pipeline.silent_s(clock.now) == 30.0


@pytest.mark.parametrize("error", [RedisConnectionError("down"), OSError("reset")])
async def test_a_failed_read_is_counted_and_keeps_the_last_verdict(error: Exception) -> None:
    _hub, _stream, watch, _clock, bus = watched()
    bus.put("md", "a", md("a"))
    await watch.poll()
    bus.fail = error
    await watch.poll()
    await watch.poll()
    assert watch.read_errors == 2 and watch.pipeline.state == "up"


async def test_zero_heartbeat_period_reads_nothing() -> None:
    hub, _stream, watch, _clock, bus = watched()
    hub.cfg = dataclasses.replace(hub.cfg, md_heartbeat_s=0.0)
    await asyncio.wait_for(watch.run(), 5.0)  # returns at once instead of looping forever
    assert bus.mget_keys == [] and watch.pipeline.state == "unknown"
