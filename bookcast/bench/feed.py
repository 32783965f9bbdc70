"""``bookcast bench feed``: the feed's benchmark on a fresh embedded broker per measurement.

The measurements live in :mod:`feed_simulator.bench`; this only supplies the broker, so
that each measurement starts on an empty Tansu (which keeps every message in memory).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bookcast.embedded_kafka import EmbeddedKafka
from feed_simulator import bench


@contextlib.contextmanager
def embedded_broker() -> Iterator[str]:
    with EmbeddedKafka() as kafka:
        yield kafka.bootstrap


def main(argv: list[str] | None = None) -> int:
    return bench.main(argv, broker=embedded_broker, prog="bookcast bench feed")
