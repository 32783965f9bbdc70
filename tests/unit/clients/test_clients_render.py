"""The text of one ``bookcast watch`` frame: a pure function of the view, the counters and the link.

Moved from test_clients_watch.py, which keeps the command itself.
"""

from __future__ import annotations

from clients import ClientStats
from clients.book_set import BookSet
from clients.render import FrameInfo, render_frame
from clients.view import BookView
from mdcore.messages import ErrorMessage
from tests.unit.clients.scripted_server import SourceBook


def small_source() -> SourceBook:
    return SourceBook(
        "BTC-USD",
        bids=[("99.50", "1.00000"), ("99.00", "2.50000"), ("98.00", "1.00000")],
        asks=[("100.25", "0.10000"), ("101.00", "3.00000")],
    )


def test_render_puts_asks_above_bids_with_the_spread_between() -> None:
    src = small_source()
    stats = ClientStats(gaps=1, resyncs=1, reconnects=2)
    books = BookSet(stats, lambda update: None)
    books.add(["BTC-USD"], 0)
    books.on_snapshot(src.snapshot(), 0)
    stats.record_latency(exchange_ns=3_250_000, window_ns=1_500_000)
    lines = render_frame(BookView(books.state("BTC-USD")), stats, FrameInfo("ws://h/ws", True, 9.87), 2)
    assert lines == [
        "BTC-USD  LIVE  seq 100  epoch e1  ws://h/ws",
        "      price      qty",
        "ask  101.00  3.00000",
        "ask  100.25  0.10000",
        "     spread 0.75",
        "bid   99.50  1.00000",
        "bid   99.00  2.50000",
        "rate 9.9 upd/s  latency exchange->recv 3.2 ms (p99 3.3 ms)  window->recv 1.5 ms (p99 1.5 ms)",
        "gaps 1  checksum failures 0  resyncs 1  reconnects 2  recoveries 0  bad frames 0",
    ]


def test_render_says_when_the_book_cannot_be_trusted() -> None:
    books = BookSet(ClientStats(), lambda update: None)
    books.add(["ETH-USD"], 0)
    view = BookView(books.state("ETH-USD"))
    lines = render_frame(view, ClientStats(), FrameInfo("ws://h/ws", True, 0.0), 5)
    assert lines[0].startswith("ETH-USD  RESYNCING  seq 0  epoch -")
    assert not any(line.startswith(("ask", "bid")) for line in lines)
    assert "no spread" in lines[2]
    offline = render_frame(view, ClientStats(), FrameInfo("ws://h/ws", False, 0.0), 5)
    assert "RECONNECTING" in offline[0]
    busy = render_frame(view, ClientStats(), FrameInfo("ws://h/ws", False, 0.0, busy_status=503), 5)
    assert busy[0].startswith("ETH-USD  GATEWAY BUSY (503)  seq 0")


def test_render_names_a_refused_pair() -> None:
    books = BookSet(ClientStats(), lambda update: None)
    books.add(["ETH-USD"], 0)
    books.begin_connection(0)
    (op,) = books.take_ops()
    books.on_error(ErrorMessage("unknown_pair", "not offered here: ETH-USD", op.id), 0)
    view = BookView(books.state("ETH-USD"))
    lines = render_frame(view, ClientStats(), FrameInfo("ws://h/ws", True, 0.0), 5)
    assert lines[0].startswith("ETH-USD  REFUSED (unknown_pair)  seq 0")
