"""mdruntime.status_bus: the three commands of a status write, sync and asyncio alike."""

from __future__ import annotations

import time

import orjson
import pytest

from mdruntime.status_bus import queue_status, write_status, write_status_async

STATUS = {"v": 1, "kind": "md", "id": "host-1", "t": 5}


class RecordingPipeline:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self.client.calls.append((name, args, kwargs))

    def execute(self) -> None:
        self.client.calls.append(("execute", (), {}))


class AsyncRecordingPipeline(RecordingPipeline):
    async def __aenter__(self) -> AsyncRecordingPipeline:
        self.client.calls.append(("enter", (), {}))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.client.calls.append(("exit", (), {}))

    async def execute(self) -> None:  # type: ignore[override]
        self.client.calls.append(("execute", (), {}))


class FakeClient:
    def __init__(self, pipeline: type[RecordingPipeline] = RecordingPipeline) -> None:
        self.calls: list = []
        self.transactions: list[bool] = []
        self._pipeline = pipeline

    def pipeline(self, transaction: bool = True) -> RecordingPipeline:
        self.transactions.append(transaction)
        return self._pipeline(self)


def test_queue_status_builds_the_three_commands() -> None:
    client = FakeClient()
    key = queue_status(client.pipeline(), "bc", "md", "host-1", STATUS, 2.0, now_ms=1_000_000)
    assert key == "bc:{status}:md:host-1"
    assert client.calls == [
        ("set", ("bc:{status}:md:host-1", orjson.dumps(STATUS)), {"px": 6_000}),
        ("zadd", ("bc:{status}:index", {"bc:{status}:md:host-1": 1_006_000}), {}),
        ("zremrangebyscore", ("bc:{status}:index", "-inf", 1_000_000), {}),
    ]


def test_the_ttl_is_at_least_three_seconds_and_the_clock_is_the_wall_clock() -> None:
    client = FakeClient()
    before = time.time_ns() // 1_000_000
    queue_status(client.pipeline(), "bc", "load", "gen", STATUS, 0.1)
    after = time.time_ns() // 1_000_000
    (_, (_, _), set_kwargs), (_, (_, members), _), (_, (_, _, now_ms), _) = client.calls
    assert set_kwargs == {"px": 3_000}
    assert before <= now_ms <= after and members == {"bc:{status}:load:gen": now_ms + 3_000}


def test_an_unknown_kind_is_refused_before_any_command() -> None:
    client = FakeClient()
    with pytest.raises(ValueError, match="unknown status kind"):
        queue_status(client.pipeline(), "bc", "feed", "x", STATUS, 1.0)
    assert client.calls == []


def test_write_status_sends_one_pipeline_without_transaction() -> None:
    client = FakeClient()
    write_status(client, "bc", "md", "host-1", STATUS, 1.0)
    assert client.transactions == [False]
    assert [name for name, _, _ in client.calls] == ["set", "zadd", "zremrangebyscore", "execute"]


async def test_write_status_async_awaits_the_pipeline_inside_its_context() -> None:
    client = FakeClient(AsyncRecordingPipeline)
    await write_status_async(client, "bc", "gateway", "gw-1", STATUS, 1.0)
    assert client.transactions == [False]
    assert [name for name, _, _ in client.calls] == [
        "enter", "set", "zadd", "zremrangebyscore", "execute", "exit",
    ]  # fmt: skip
    assert client.calls[1][1][0] == "bc:{status}:gateway:gw-1"
