"""``bookcast bench NAME``: run one benchmark (each prints its figures and a JSON report)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "ingest": ("bookcast.bench.ingest", "md_service: level changes/s, batching reduction, publish latency"),
    "fanout": (
        "bookcast.bench.fanout",
        "gateway: frames/s and latency for thousands of clients vs baselines",
    ),
    "realistic": (
        "bookcast.bench.realistic",
        "the real pipeline under a venue's traffic: ramp, reconnect storm, md_service paused, goals",
    ),
    "binance": ("gateway.binance.bench", "Binance dialect: encode cost per delta vs the native encoder"),
    "obs": ("bookcast.bench.obs", "observability: latency hooks per delta vs the work there, scrape cost"),
    "feed": (
        "bookcast.bench.feed",
        "feed_simulator: level changes/s into Kafka, 1 and N processes vs baselines",
    ),
    "scale": (
        "bookcast.bench.scale",
        "sharded Pub/Sub: messages/s delivered to N subscribers on 1, 2, 3 cluster primaries",
    ),
}


def usage() -> str:
    lines = ["usage: bookcast bench NAME [options]", "", "benchmarks:"]
    lines += [f"  {name:<9} {what}" for name, (_, what) in BENCHMARKS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    entry = BENCHMARKS.get(argv[0])
    if entry is None:
        print(f"bookcast bench: unknown benchmark {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(entry[0])
    return int(module.main(argv[1:]))
