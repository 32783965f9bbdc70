"""gateway.session's ClientSession: one text frame per send, and a close that never waits on the client.

Its states (live, stale, closing) and the Protocol the hub needs of it are
``test_gateway_session_protocol.py``'s (the name gateway.session cites). Here the connection
is a stand-in recording what the session does to it; the real WebSocket server around it is
covered by tests/integration/test_gateway_slow.py and test_gateway_limits.py.
"""

from __future__ import annotations

from websockets.protocol import OPEN, State

from gateway.core.wsframe import text_frame
from gateway.session import ClientSession, SessionState
from tests.unit.gateway.gateway_fakes import FakeTransport, turn, wait_until


class Transport(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False
        self.closing_ = False
        self.error: Exception | None = None

    def write(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        super().write(data)

    def is_closing(self) -> bool:
        return self.closing_ or self.aborted

    def abort(self) -> None:
        self.aborted = True


class Protocol:
    def __init__(self) -> None:
        self.state = OPEN
        self.close_frames: list[tuple[int, str]] = []

    def send_close(self, code: int, reason: str) -> None:
        self.close_frames.append((code, reason))
        self.state = State.CLOSING


class Conn:
    def __init__(self, remote_address: tuple[str, int] | None = ("10.0.0.7", 40000)) -> None:
        self.protocol = Protocol()
        self.transport = Transport()
        self.remote_address = remote_address
        self.flushed = 0

    def send_data(self) -> None:
        self.flushed += 1


def test_a_session_starts_live_and_knows_its_peer() -> None:
    session = ClientSession(Conn())  # type: ignore[arg-type]
    assert session.state is SessionState.LIVE and session.open and not session.lagging
    assert session.peer == "10.0.0.7" and session.pairs == set() and session.group is None
    assert ClientSession(Conn(remote_address=None)).peer == "?"  # type: ignore[arg-type]


def test_send_writes_one_text_frame_or_says_it_could_not() -> None:
    conn = Conn()
    session = ClientSession(conn)  # type: ignore[arg-type]
    assert session.send(b'{"type":"pong"}')
    assert conn.transport.frames == [text_frame(b'{"type":"pong"}')]
    conn.transport.buffered = 123
    assert session.buffered_bytes() == 123
    conn.transport.error = RuntimeError("closed under us")
    assert not session.send(b"{}")
    conn.transport.error = OSError("reset")
    assert not session.send(b"{}")
    conn.transport.error = None
    conn.protocol.state = State.CLOSED
    assert not session.send(b"{}") and not session.open
    assert len(conn.transport.frames) == 1


async def test_close_sends_the_code_now_and_drops_the_connection_after_the_grace() -> None:
    conn = Conn()
    session = ClientSession(conn)  # type: ignore[arg-type]
    session.go_stale({"ETH-USD": None}, 1.0)
    session.close(4008, "too slow", grace_s=0.0)
    assert session.state is SessionState.CLOSING and not session.open and session.lag_marks == {}
    assert conn.protocol.close_frames == [(4008, "too slow")] and conn.flushed == 1
    assert not conn.transport.aborted  # not inside close: after the grace
    await wait_until(lambda: conn.transport.aborted)
    session.close(1000, "again", grace_s=0.0)  # closing already: no second close frame
    assert conn.protocol.close_frames == [(4008, "too slow")]


async def test_close_of_a_connection_already_going_sends_nothing_and_aborts_nothing_twice() -> None:
    conn = Conn()
    conn.protocol.state = State.CLOSING  # the client closed first
    session = ClientSession(conn)  # type: ignore[arg-type]
    session.close(1001, "going away", grace_s=0.0)
    assert conn.protocol.close_frames == [] and conn.flushed == 0
    await wait_until(lambda: conn.transport.aborted)  # dropped all the same

    gone = Conn()
    gone.transport.closing_ = True  # the transport is closing already
    ClientSession(gone).close(1001, "going away", grace_s=0.0)  # type: ignore[arg-type]
    await turn()  # a zero-delay abort would have run by now
    assert not gone.transport.aborted and gone.protocol.close_frames == [(1001, "going away")]
