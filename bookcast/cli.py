"""The ``bookcast`` command: the demo, and each tier on its own.

bookcast up                  everything, embedded servers included
bookcast feed|md|gateway     one tier (settings from the environment, see docs/operations.md)
bookcast watch PAIR          a live view of one book
bookcast chaos               the fault suite: faults on a schedule, every book checked
"""

from __future__ import annotations

import sys
from collections.abc import Callable

USAGE = __doc__ or ""


def _commands() -> dict[str, Callable[[list[str]], int]]:
    # Imported lazily: `bookcast watch` should not pay for Kafka's import, nor `feed` for websockets'.
    def up(argv: list[str]) -> int:
        from bookcast.up import main

        return main(argv)

    def feed(argv: list[str]) -> int:
        from feed_simulator.cli import main

        return main(argv)

    def md(argv: list[str]) -> int:
        from md_service.cli import main

        return main(argv)

    def gateway(argv: list[str]) -> int:
        from gateway.cli import main

        return main(argv)

    def watch(argv: list[str]) -> int:
        from clients.watch import main

        return main(argv)

    def load(argv: list[str]) -> int:
        from clients.load import main

        return main(argv)

    def bench(argv: list[str]) -> int:
        from bookcast.bench.cli import main

        return main(argv)

    def chaos(argv: list[str]) -> int:
        from bookcast.chaos.cli import main

        return main(argv)

    return {
        "up": up,
        "feed": feed,
        "md": md,
        "gateway": gateway,
        "watch": watch,
        "load": load,
        "bench": bench,
        "chaos": chaos,
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE.strip())
        return 0 if argv else 2
    command = commands.get(argv[0])
    if command is None:
        print(f"bookcast: unknown command {argv[0]!r}\n\n{USAGE.strip()}", file=sys.stderr)
        return 2
    return command(argv[1:])
