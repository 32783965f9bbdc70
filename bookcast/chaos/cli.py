"""``bookcast chaos``: run the fault suite (or, with ``--fuzz N``, the protocol fuzzer) and judge it.

Exit status: 0 when every goal is met; 1 when one is not (a divergent book, a seq published
twice with different content, a fault not healed, a traceback, a fault's own rule broken);
2 for bad arguments.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

import orjson

from bookcast.chaos.report import render
from bookcast.chaos.settings import ChaosSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bookcast chaos",
        description="The fault suite: the whole stack on loopback, faults on a schedule, every book checked.",
        epilog="docs/operations.md, section 'Fault suite', says what it injects and how to read its figures.",
    )
    parser.add_argument("--duration", type=float, help="seconds of faults (default 300; --quick: 55)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the schedule, the feed and the clients")
    parser.add_argument("--quick", action="store_true", help="the short pass CI runs: every fault kind once")
    parser.add_argument("--json", metavar="FILE", help="write the figures and the verdict as JSON")
    parser.add_argument("--logs", metavar="DIR", help="keep every tier's logs here (default: a new temp dir)")
    parser.add_argument("--note", default="", help="what else runs on the machine, for the report")
    parser.add_argument(
        "--fuzz", type=int, metavar="N", help="instead: fuzz a gateway's WebSocket and HTTP with N inputs"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        print("bookcast chaos: --duration must be positive", file=sys.stderr)
        return 2
    if args.fuzz is not None and args.fuzz < 1:
        print("bookcast chaos: --fuzz needs at least 1 input", file=sys.stderr)
        return 2
    if args.fuzz is not None:
        from bookcast.chaos.fuzz_run import main as fuzz_main

        return fuzz_main(args.fuzz, args.seed, args.json)
    from bookcast.chaos.runner import run

    log_dir = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="bookcast-chaos-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    settings = ChaosSettings.for_run(args.duration, args.seed, args.quick)
    command = shlex.join(["bookcast", "chaos", *(argv if argv is not None else sys.argv[1:])])
    body = run(settings, sys.stdout, log_dir, command, args.note)
    print()
    print(render(body))
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    return 0 if body["verdict"]["passed"] else 1
