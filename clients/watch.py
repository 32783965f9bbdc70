"""``bookcast watch PAIR``: a live view of one pair's top of book in the terminal.

On a terminal the frame is redrawn in place with ANSI codes (no curses); when stdout is
not a terminal (a pipe, a test) each frame is appended, followed by a blank line.
``--frames N`` / ``--once`` stop after N frames. Ctrl-C and SIGTERM exit cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TextIO

from clients.book_client import BookClient
from clients.config import DEFAULT_URL, WatchConfig
from clients.errors import ClientConnectError
from clients.render import FrameInfo, render_frame
from clients.stats import RateMeter
from clients.updates import UpdateStream
from mdcore.settings import SettingError
from mdruntime.logs import setup_logging

log = logging.getLogger(__name__)

STATUS_REFRESH = 1.0  # seconds between redraws on a terminal when nothing arrives


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bookcast watch", description="Show the live top of book of one pair."
    )
    parser.add_argument("pair", metavar="PAIR", help="pair to watch, e.g. BTC-USD")
    parser.add_argument("--url", help=f"gateway WebSocket URL (default: $BOOKCAST_URL or {DEFAULT_URL})")
    parser.add_argument("--depth", type=int, default=5, help="levels per side to show (default 5)")
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--frames", type=int, metavar="N", help="exit after N frames")
    stop.add_argument("--once", action="store_true", help="exit after the first frame (--frames 1)")
    parser.add_argument(
        "--interval", type=float, default=0.1, help="minimum seconds between redraws (default 0.1)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help or a usage error, already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    try:
        config = WatchConfig.from_args(args, os.environ)
    except SettingError as exc:
        print(f"bookcast watch: {exc}", file=sys.stderr)
        return 2
    setup_logging(level=config.log_level)  # to stderr: stdout is the view
    try:
        return asyncio.run(watch(config))
    except KeyboardInterrupt:  # only where signal handlers cannot be installed
        return 0


class Screen:
    """Where frames go: redrawn in place with ANSI codes, or appended as plain text."""

    def __init__(self, out: TextIO, ansi: bool) -> None:
        self.out = out
        self.ansi = ansi

    def open(self) -> None:
        if self.ansi:
            self.out.write("\x1b[?25l\x1b[2J")  # hide the cursor, clear the screen

    def draw(self, lines: list[str]) -> None:
        if self.ansi:
            # Home, each line followed by "clear to end of line", then clear whatever is below.
            self.out.write("\x1b[H" + "".join(f"{line}\x1b[K\n" for line in lines) + "\x1b[J")
        else:
            self.out.write("\n".join(lines) + "\n\n")
        self.out.flush()

    def close(self) -> None:
        if self.ansi:
            self.out.write("\x1b[?25h")  # show the cursor again
            self.out.flush()


async def watch(config: WatchConfig, out: TextIO | None = None) -> int:
    """Run the watcher until ``config.frames`` frames are drawn or a stop signal; the exit code."""
    out = out if out is not None else sys.stdout
    client = BookClient(config.url, [config.pair])
    try:
        await client.start()
    except ClientConnectError as exc:
        print(
            f"bookcast watch: {exc}\n"
            "  Is a gateway running there? `bookcast up` starts the whole demo;"
            " --url or BOOKCAST_URL points the watcher elsewhere.",
            file=sys.stderr,
        )
        return 1
    stream = client.updates()
    stopped = False

    def request_stop() -> None:
        nonlocal stopped
        stopped = True
        stream.close()

    restore_signals = _on_stop_signals(request_stop)
    screen = Screen(out, ansi=out.isatty())
    screen.open()
    try:
        await _draw_loop(client, config, stream, screen)
        failed = client.closed and not stopped  # the client gave up by itself
    finally:
        screen.close()
        restore_signals()
        await client.close()
    if failed:
        print("bookcast watch: the client stopped unexpectedly (see the log)", file=sys.stderr)
        return 1
    return 0


async def _draw_loop(client: BookClient, config: WatchConfig, stream: UpdateStream, screen: Screen) -> None:
    """Draw a frame per update (at most one per interval), and on a terminal every second."""
    meter = RateMeter()
    view = client.book(config.pair)
    frames = 0
    last_draw = -math.inf
    pending = False
    while True:
        now = time.monotonic()
        if pending:
            timeout: float | None = max(0.0, last_draw + config.interval - now)
        else:
            timeout = STATUS_REFRESH if screen.ansi else None
        try:
            update = await stream.next(timeout)
        except StopAsyncIteration:
            return
        now = time.monotonic()
        if update is not None:
            meter.mark(now)
            pending = True
        due = pending and now - last_draw >= config.interval
        if not due and not (update is None and screen.ansi):
            continue
        refusal = client.last_refusal
        info = FrameInfo(client.url, client.connected, meter.rate(now), refusal and refusal.status)
        screen.draw(render_frame(view, client.stats, info, config.depth))
        frames += 1
        last_draw, pending = now, False
        if config.frames is not None and frames >= config.frames:
            return


def _on_stop_signals(callback: Callable[[], None]) -> Callable[[], None]:
    """Route SIGINT and SIGTERM to ``callback``; returns the function that undoes it."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, callback)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            continue
        installed.append(sig)

    def restore() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return restore
