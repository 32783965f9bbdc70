"""``bookcast gateway`` / ``python -m gateway``: run the gateway (one process, or N workers)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gateway.binance.config import load_binance_config
from gateway.config import add_arguments, load_config
from gateway.dashboard.service import load_dashboard_config
from gateway.metrics import load_metrics_config
from gateway.server import run_gateway
from gateway.workers import Supervisor, die_with_supervisor
from mdcore.settings import SettingError
from mdruntime.logs import setup_logging


def _raise_fd_limit() -> None:
    """Thousands of clients need thousands of descriptors: take the hard limit."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="bookcast gateway", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    worker = os.environ.get("BOOKCAST_GATEWAY_WORKER")
    setup_logging(f"gateway-{worker}" if worker else "gateway")
    # websockets logs every connection and HTTP request at INFO: too loud for thousands of clients.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        cfg = load_config(args)
        binance = load_binance_config()
        load_metrics_config(), load_dashboard_config()  # fail fast on a bad setting, before any worker
    except SettingError as exc:
        print(f"bookcast gateway: {exc}", file=sys.stderr)
        return 2
    _raise_fd_limit()
    if cfg.workers > 1:
        return Supervisor(cfg, _passthrough(argv)).run()
    die_with_supervisor()
    try:
        import uvloop
    except ImportError:  # uvloop has no Windows build; asyncio's loop works, slower
        import asyncio

        asyncio.run(run_gateway(cfg, binance=binance))
    else:
        uvloop.run(run_gateway(cfg, binance=binance))
    return 0


def _passthrough(argv: list[str]) -> list[str]:
    """The flags a worker inherits (the supervisor sets workers, host and port itself)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in ("--workers", "--host", "--port"):
            skip = "=" not in arg
            continue
        if name == "--reuse-port":
            continue
        out.append(arg)
    return out
