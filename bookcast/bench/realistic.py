"""``bookcast bench realistic``: the real pipeline under a venue's traffic, measured as a user would.

Starts embedded Kafka (Tansu) and Redis (Valkey), then the real ``bookcast md``, ``bookcast
gateway --workers 1`` (one or more) and ``bookcast feed --scenario zipf`` as child processes,
and drives clients with the real ``bookcast load``. Phases (``--phases``; the ramp always
runs first): the ramp and a steady window, a reconnect storm (a gateway SIGKILLed and
restarted), md_service paused and resumed, an overload of one gateway, and the synthetic
``bench fanout`` at the same client count. It prints deltas/s, frames/s and frames per
client per window, latency from window close and from exchange time, CPU per tier, memory
per connection, connects/s, failures and refusals, how long until every client is synced
again after the storm, md_service's catch-up rate, and each goal of issue 12 as met or
missed. See docs/gateway.md ("The real pipeline").

The embedded broker keeps every message in memory (about 1 GB per 10 million level
changes): the default run sends ~3,000 events/s for two to three minutes.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bookcast.bench.realistic_faults import pause, storm
from bookcast.bench.realistic_figures import load_summary
from bookcast.bench.realistic_goals import judge
from bookcast.bench.realistic_overload import overload
from bookcast.bench.realistic_phases import Phases
from bookcast.bench.realistic_ramp import ramp, steady
from bookcast.bench.realistic_report import document, lines
from bookcast.bench.realistic_settings import Settings, SettingsError, build_parser, settings_from
from bookcast.bench.realistic_stack import Stack
from bookcast.bench.realistic_synthetic import synthetic
from bookcast.managed_process import EmbeddedServerError

STREAMS_TIMEOUT = 60.0  # for md_service to have every pair's stream and no backlog before the clients come


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, and what else was running when the run began."""
    return {
        "cores": os.cpu_count() or 1,
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "started_at": time.time(),
    }


def run(settings: Settings) -> dict[str, Any]:
    """Every selected phase; the report document (sections of phases not run are null)."""
    sections: dict[str, Any] = {}
    host = machine()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the children inherit it
    with tempfile.TemporaryDirectory(prefix="bookcast-realistic-") as tmp:
        workdir = Path(tmp)
        stack = Stack(settings)
        try:
            say(f"starting Kafka, Redis, md_service, {settings.gateways} gateway(s), the feed …")
            stack.start()
            streams, behind = stack.wait_ready(STREAMS_TIMEOUT, settings.lag_threshold)
            host["pair_streams"], host["md_behind_at_start"] = streams, behind
            say(
                f"md_service has {streams} of {settings.pairs} pair streams and trails the feed by "
                f"{'?' if behind is None else f'{behind:,.0f}'} events; clients come now"
            )
            phases = Phases(settings, stack, workdir, say)
            sections["ramp"] = ramp(phases)
            sections["steady"] = steady(phases)
            if "storm" in settings.phases:
                sections["storm"] = storm(phases)
            if "pause" in settings.phases:
                sections["pause"] = pause(phases)
            phases.end_phase_one()
            if "overload" in settings.phases:
                sections["overload"] = overload(phases)
            host["broker_rss_mib_at_end"] = round(stack.broker_rss() / 2**20, 1)
            sections["loads"] = {name: load_summary(r) for name, r in phases.final_reports.items()}
        finally:
            say("stopping the stack …")
            stack.stop()
        if "synthetic" in settings.phases:
            clients = sections["steady"]["clients_on_first_gateway"]
            sections["synthetic"] = synthetic(settings, clients, workdir, say)
    host["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    host["seconds"] = round(time.time() - host["started_at"], 1)
    partial = document(settings, sections, [], host)
    return document(settings, sections, judge(settings, partial), host)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args)
    except SettingsError as exc:
        print(f"bookcast bench realistic: {exc}", file=sys.stderr)
        return 2
    try:
        report = run(settings)
    except (RuntimeError, EmbeddedServerError) as exc:
        print(f"bookcast bench realistic: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines(report)))
    if settings.json_path:
        Path(settings.json_path).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        print(f"\nwrote {settings.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
