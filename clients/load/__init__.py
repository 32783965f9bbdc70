"""``bookcast load``: the WebSocket load generator (see docs/clients.md).

``main(argv) -> int`` is the command. The parts: :mod:`~clients.load.checker` (the per-connection
rules, pure), :mod:`~clients.load.connection` (websockets' sans-I/O protocol on a bare transport),
:mod:`~clients.load.worker` (one process of connections), :mod:`~clients.load.cli` (the parent),
:mod:`~clients.load.stats` and :mod:`~clients.load.report` (counters, HdrHistograms, the report).
"""

from clients.load.cli import main

__all__ = ["main"]
