"""Command line of the clients tier: ``python -m clients watch PAIR`` (``bookcast watch``)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from clients import load, watch

COMMANDS: dict[str, tuple[Callable[[list[str] | None], int], str]] = {
    "watch": (watch.main, "live top of book of one pair"),
    "load": (load.main, "WebSocket load generator with latency histograms"),
}


def usage() -> str:
    lines = ["usage: python -m clients COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:<8} {about}" for name, (_, about) in COMMANDS.items()]
    lines.append("\nRun 'python -m clients COMMAND --help' for a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return command[0](args[1:])
