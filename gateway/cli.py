"""``bookcast gateway`` / ``python -m gateway``: run one gateway process."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gateway.config import add_arguments, load_config
from gateway.server import run_gateway
from mdcore.settings import SettingError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bookcast gateway", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("BOOKCAST_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s gateway %(levelname)s %(name)s: %(message)s",
    )
    # websockets logs every connection and HTTP request at INFO: too loud for thousands of clients.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        cfg = load_config(args)
    except SettingError as exc:
        print(f"bookcast gateway: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:  # uvloop has no Windows build; asyncio's loop works, slower
        import asyncio

        asyncio.run(run_gateway(cfg))
    else:
        uvloop.run(run_gateway(cfg))
    return 0
