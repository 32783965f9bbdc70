"""Write the conformance kit's cases (``cases/*.jsonl``).

    python -m tests.conformance.generate                   # the crafted cases (deterministic)
    python -m tests.conformance.generate --check           # exit 1 if a crafted file is not what this writes
    python -m tests.conformance.generate --record ws://127.0.0.1:8765/ws   # record a real run

(from the repository's root: the kit is the package ``tests.conformance``.)

The crafted cases are :mod:`tests.conformance.crafted` (deterministic: a test checks the
committed files against them); ``--record`` records a running gateway with
:mod:`tests.conformance.record`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from tests.conformance.crafted import crafted
from tests.conformance.kit import CASES
from tests.conformance.record import record

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare the crafted cases with the files")
    parser.add_argument("--record", metavar="URL", help="record recorded_stream.jsonl from a running gateway")
    parser.add_argument("--pairs", default="BTC-USD,ETH-USD")
    parser.add_argument("--frames", type=int, default=40, help="frames to record before the reconnect")
    parser.add_argument("--pause", type=float, default=1.5, help="seconds away before the reconnect")
    args = parser.parse_args()
    if args.record:
        case = asyncio.run(record(args.record, args.pairs.split(","), args.frames, args.pause))
        target = CASES / "recorded_stream.jsonl"
        target.write_text(case.text())
        print(f"wrote {target} ({len(case.steps)} steps)")
        return 0
    stale = []
    for path, text in crafted().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            CASES.mkdir(exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"not what generate.py writes: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
