"""Fakes and set-ups shared by the gateway's unit tests of the fan-out, subscriptions, slow
clients and the hub.

No sockets: a fake transport records the exact bytes each client would receive, and the hub
runs on the in-memory store (gateway.memory_store), which the contract suite holds to the
same behaviour as Redis, so the grouping, the packing, the order of snapshot/replay/deltas
and the conflation rules are checked with plain calls (plus event-loop turns for the
deferred flush).
"""

from __future__ import annotations

import asyncio

from websockets.protocol import OPEN

from gateway.config import GatewayConfig
from gateway.core.replica import PairReplica, ReplicaState
from gateway.fanout import Group
from gateway.hub import Hub
from gateway.memory_store import MemoryStore, MemoryStreams
from gateway.session import SessionLifecycle, SessionState
from mdcore.codec import decode_server_frame, encode_snapshot
from mdcore.local_book import LocalBook
from mdcore.messages import StreamPosition
from tests.unit.gateway.md_service_free_fixtures import Stream


class FakeTransport:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.buffered = 0
        self.fail = False

    def write(self, data: bytes) -> None:
        if self.fail:
            raise RuntimeError("closed")
        self.frames.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return False


class FakeProtocol:
    def __init__(self) -> None:
        self.state = OPEN


class FakeSession(SessionLifecycle):
    """A :class:`gateway.session.Subscriber` that records what it is sent (no socket)."""

    def __init__(self, *pairs: str) -> None:
        self.pairs = set(pairs)
        self.group: Group | None = None
        self.transport = FakeTransport()
        self.protocol = FakeProtocol()
        self.state = SessionState.LIVE
        self.lag_since = 0.0
        self.lag_marks: dict[str, StreamPosition | None] = {}
        self.floors: dict[str, int] | None = None
        self.peer = "test"
        self.closed_with: tuple[int, str] | None = None

    @property
    def open(self) -> bool:
        return self.state is not SessionState.CLOSING and self.protocol.state is OPEN

    def send(self, payload: bytes) -> bool:
        from gateway.core.wsframe import text_frame

        self.transport.write(text_frame(payload))
        return True

    def buffered_bytes(self) -> int:
        return self.transport.buffered

    def close(self, code: int, reason: str, grace_s: float = 1.0) -> None:
        self.closed_with = (code, reason)
        self.closing()

    def messages(self) -> list[object]:
        out: list[object] = []
        for frame in self.transport.frames:
            header = 2 if frame[1] < 126 else 4
            out += decode_server_frame(frame[header:])
        return out


async def turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def make_hub(windows: int = 30, recent: int = 5, history_from: int = 10) -> tuple[Hub, MemoryStore, Stream]:
    """A hub on the in-memory store, which holds the stream up to seq 20 with history from
    ``history_from`` on (a snapshot just before it)."""
    cfg = GatewayConfig(
        redis_url="redis://127.0.0.1:1/0", pairs=("ETH-USD",), recent_deltas=recent,
        frame_quiet_ms=0, frame_hold_ms=0,  # flush at the end of each turn: the tests step turns
    )  # fmt: skip
    stream = Stream("ETH-USD", windows)
    streams = MemoryStreams(history=windows)
    start = history_from - 1
    snapshot = encode_snapshot(stream.book_at(start).to_snapshot())
    streams.write("ETH-USD", stream.epoch, start, start, b"", snapshot)
    for seq in range(history_from, 21):
        streams.write("ETH-USD", stream.epoch, seq, seq, stream.delta(seq))
    hub = Hub(cfg, store=streams.connect)
    assert isinstance(hub.link, MemoryStore)
    return hub, hub.link, stream


def live_replica(hub: Hub, stream: Stream, at: int, recent_from: int) -> PairReplica:
    """ETH-USD's replica made live at ``at``, as if the hub had followed the pair for a while
    (claimed, as by a subscribe in progress, and already streaming from the store)."""
    hub.claim(["ETH-USD"])
    channel = hub.channels["ETH-USD"]
    channel.streaming = True
    replica = channel.replica
    replica.local = stream.book_at(at)
    replica.state = ReplicaState.LIVE
    replica.not_live_since = None
    for seq in range(recent_from, at + 1):
        replica.recent.append((seq, stream.delta(seq)))
    return replica


async def wait_until(predicate, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


class Loads:
    """A fake ``load_book`` (of ``BookCache``, or the store's) that counts its calls and
    returns ``result`` (or raises it) once ``release`` is set."""

    def __init__(self, result: LocalBook | Exception | None) -> None:
        self.result = result
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self, pair: str) -> LocalBook | None:
        self.calls += 1
        await self.release.wait()
        if isinstance(self.result, Exception):
            raise self.result
        return self.result
