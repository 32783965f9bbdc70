"""``bookcast watch``: frames on stdout, its settings, and a clean exit on SIGTERM.

The frame's text is test_clients_render.py, the top-level dispatch test_clients_cli.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest

from clients import cli
from tests.unit.clients.scripted_server import SourceBook, T

ROOT = Path(__file__).resolve().parents[3]


def parse_frames(text: str) -> list[tuple[int, list[tuple[str, str, str]]]]:
    """Plain-text frames -> (seq, [(side, price, qty), ...]) each."""
    frames = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        seq = int(re.search(r"\bseq (\d+)\b", lines[0]).group(1))
        levels = [tuple(line.split()) for line in lines if line.startswith(("ask ", "bid "))]
        frames.append((seq, levels))
    return frames


def expected_levels(src: SourceBook, seq: int, depth: int) -> list[tuple[str, str, str]]:
    bids, asks = src.history[seq]
    return [("ask", p, q) for p, q in reversed(asks[:depth])] + [("bid", p, q) for p, q in bids[:depth]]


async def test_watch_frames_show_the_top_of_book(server, capsys) -> None:
    src = SourceBook.with_depth("BTC-USD", levels=8)
    argv = ["watch", "BTC-USD", "--url", server.url, "--depth", "3", "--frames", "3", "--interval", "0"]
    run = asyncio.create_task(asyncio.to_thread(cli.main, argv))
    conn = await server.accept()
    op = await conn.expect("subscribe")
    assert op["pairs"] == ["BTC-USD"]
    await conn.subscribed(op)
    await conn.send(src.snapshot())
    for _ in range(4):
        await conn.send(src.bump())
    async with asyncio.timeout(T):
        assert await run == 0
        await conn.closed.wait()  # the watcher closed its connection on the way out
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # not a terminal: plain frames, no ANSI codes
    frames = parse_frames(out)
    assert len(frames) == 3
    for seq, shown in frames:
        assert src.seq - 4 <= seq <= src.seq
        assert shown == expected_levels(src, seq, 3)
    assert [seq for seq, _ in frames] == sorted(seq for seq, _ in frames)


def test_watch_says_clearly_when_it_cannot_connect(capsys) -> None:
    with socket.socket() as sock:  # bound, not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"
        assert cli.main(["watch", "BTC-USD", "--url", url, "--once"]) == 1
    err = capsys.readouterr().err
    assert f"cannot connect to {url}" in err
    assert "bookcast up" in err


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["watch", "NOPE-USD"], {}, "unknown pair 'NOPE-USD'"),
        (["watch", "BTC-USD", "--depth", "0"], {}, "--depth=0"),
        (["watch", "BTC-USD", "--frames", "0"], {}, "--frames=0"),
        (["watch", "BTC-USD", "--url", "http://x/ws"], {}, "--url='http://x/ws'"),
        (["watch", "BTC-USD"], {"BOOKCAST_URL": "nonsense"}, "BOOKCAST_URL='nonsense'"),
        (["watch", "BTC-USD"], {"BOOKCAST_LOG_LEVEL": "loud"}, "BOOKCAST_LOG_LEVEL"),
    ],
)
def test_watch_rejects_bad_settings(argv, env, message, capsys, monkeypatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_watch_exits_cleanly_on_a_stop_signal(server, sig) -> None:
    src = SourceBook.with_depth("BTC-USD", levels=3)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "clients", "watch", "BTC-USD", "--url", server.url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        conn = await server.accept(timeout=3 * T)  # a fresh interpreter takes a moment
        await conn.expect("subscribe")
        await conn.send(src.snapshot())
        async with asyncio.timeout(T):
            first = await proc.stdout.readline()  # the first frame is on screen
        assert first.startswith(b"BTC-USD  LIVE")
        proc.send_signal(sig)
        async with asyncio.timeout(T):
            rc = await proc.wait()
            await conn.closed.wait()
        assert rc == 0
        assert b"Traceback" not in await proc.stderr.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
