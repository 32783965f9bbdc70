"""One chaos run from start to verdict: stack up, clients synced, faults in turn, final check.

Before each fault the stack must be whole again (both md_services in the group, gateways
ready, every client synced), so each fault's time to heal is its own. Progress is printed
as it goes; the figures at the end (:mod:`bookcast.chaos.report`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import random
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TextIO

from bookcast.chaos import machine
from bookcast.chaos.faults import INJECTORS, Injected
from bookcast.chaos.final import FinalCheck, final_check
from bookcast.chaos.fleet import Fleet
from bookcast.chaos.heal import Heal, darkest, heal_of
from bookcast.chaos.logscan import Traceback, find_tracebacks
from bookcast.chaos.recorder import PubSubRecorder
from bookcast.chaos.report import FaultResult, RunFacts, figures
from bookcast.chaos.schedule import Fault, FaultKind, plan
from bookcast.chaos.settings import ChaosSettings
from bookcast.chaos.stack import ChaosStack

START_TIMEOUT_S = 60.0
POLL_EVERY_S = 1.0
MD_COUNTERS = (
    "epochs_started", "partitions_claimed", "partitions_lost", "partitions_released", "pairs_refused",
    "writes_lost", "events_duplicate", "events_late", "exchange_gaps", "redis_errors", "kafka_errors",
    "replays", "windows", "deltas",
)  # fmt: skip
CLIENT_COUNTERS = (
    "snapshots", "deltas", "gaps", "checksum_failures", "resyncs", "reconnects", "disconnects",
    "recoveries", "connect_failures", "handshake_refusals", "bad_frames", "errors", "subscribe_refusals",
)  # fmt: skip


class Run:
    """One run's stack, clients, recorder and facts; :meth:`run` goes through every phase."""

    def __init__(self, settings: ChaosSettings, out: TextIO, log_dir: Path, command: str, note: str) -> None:
        self.s = settings
        self.out = out
        self.log_dir = log_dir
        self.rng = random.Random(f"bookcast-chaos-run:{settings.seed}")
        self.stack = ChaosStack(settings, log_dir)
        self.recorder: PubSubRecorder | None = None
        self.fleet: Fleet | None = None
        self.t0 = time.monotonic()
        self.phase_start = self.t0
        self.facts = RunFacts(
            command=command,
            date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            seed=settings.seed,
            quick=settings.quick,
            planned_s=settings.duration_s,
            log_dir=str(log_dir),
        )
        self.facts.machine = {
            "cpus": os.cpu_count(),
            "load_before": machine.load(),
            "busiest_before": machine.busiest(exclude=frozenset({os.getpid()})),
            "others": note,
        }

    def say(self, text: str) -> None:
        self.out.write(f"[{time.monotonic() - self.t0:7.1f}s] {text}\n")
        self.out.flush()

    # --- phases ------------------------------------------------------------------------------

    async def start(self) -> None:
        s, stack = self.s, self.stack
        await asyncio.to_thread(stack.start_infra)
        self.say(
            f"kafka {stack.kafka.bootstrap}, redis {stack.redis.url}, topic {stack.topic}, "
            f"logs {self.log_dir}"
        )
        self.recorder = PubSubRecorder(stack.redis.url, stack.layout, s.pairs)
        self.recorder.start()
        await asyncio.to_thread(stack.start_tiers)
        self.say(
            f"{len(stack.mds)} md_service, {len(stack.gateways)} gateways "
            f"({', '.join(str(g.port) for g in stack.gateways)}), "
            f"feed at {s.feed_rate:g} events/s on {len(s.pairs)} pairs"
        )
        if not await self._until(self._all_published, START_TIMEOUT_S):
            raise RuntimeError("not every pair was published within a minute of the start")
        urls = [f"ws://127.0.0.1:{g.port}/ws" for g in stack.gateways]
        self.fleet = Fleet(urls, s.pairs, s.clients, self.rng)
        await self.fleet.start(START_TIMEOUT_S)
        books = sum(len(p) for p in self.fleet.subscriptions.values())
        self.say(f"{s.clients} verifying clients synced ({books} books)")
        self.facts.setup = {
            "pairs": len(s.pairs), "partitions": s.partitions, "feed_rate": s.feed_rate,
            "md_instances": s.md_instances, "gateways": s.gateways, "overrides": s.overrides(),
        }  # fmt: skip

    def _all_published(self) -> bool:
        assert self.recorder is not None
        with self.recorder.lock:
            return all(self.recorder.log.times.get(p) for p in self.s.pairs)

    async def _until(self, predicate: Callable[[], bool], timeout: float, every: float = 0.2) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            await asyncio.sleep(every)
        return False

    async def settle(self) -> str | None:
        """Wait until the stack is whole; None if it is, else what is still missing."""
        assert self.fleet is not None
        stack, fleet = self.stack, self.fleet
        everything = set(range(self.s.partitions))
        missing = "nothing"

        def whole() -> str | None:
            owned = [set(stack.owned(md)) for md in stack.mds]
            if not all(owned) or set().union(*owned) != everything:
                return f"md_service partitions {[sorted(o) for o in owned]}"
            for gateway in stack.gateways:
                body = stack.health(gateway)
                if not body or not body.get("ready"):
                    return f"{gateway.name} not ready"
            return None

        deadline = time.monotonic() + self.s.settle_timeout_s
        while time.monotonic() < deadline:
            missing = await asyncio.to_thread(whole)
            if missing is None and not fleet.all_synced():
                missing = f"clients not synced: {', '.join(fleet.unsynced()[:3])}"
            if missing is None:
                return None
            await asyncio.sleep(0.2)
        return missing

    def heal_now(self, after: float) -> Heal:
        assert self.recorder is not None and self.fleet is not None
        with self.recorder.lock:
            return heal_of(
                after, self.s.pairs, self.fleet.subscriptions, self.recorder.log, self.fleet.updates
            )

    async def wait_heal(self, injected: Injected) -> Heal:
        timeout = self.s.heal_timeout_s
        if injected.fault.kind is FaultKind.FEED_KILL:
            timeout += injected.started - self.phase_start + 30.0  # the restarted feed replays its run so far
        heal = self.heal_now(injected.lifted)
        deadline = injected.lifted + timeout
        while heal.healed_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            heal = self.heal_now(injected.lifted)
        return heal

    async def faults(self) -> None:
        schedule = plan(
            self.s.seed,
            self.s.duration_s,
            mds=self.s.md_instances,
            gateways=self.s.gateways,
            quick=self.s.quick,
        )
        self.say(
            f"schedule (seed {self.s.seed}): {len(schedule)} faults: "
            + ", ".join(f.describe() for f in schedule)
        )
        self.phase_start = time.monotonic()
        for fault in schedule:
            if time.monotonic() - self.phase_start > self.s.duration_s * 1.5:
                self.say(f"out of time: {len(schedule) - fault.index + 1} faults not injected")
                break
            await self.one(fault)
        self.facts.fault_phase_s = time.monotonic() - self.phase_start

    async def one(self, fault: Fault) -> None:
        unsettled = await self.settle()
        at = time.monotonic() - self.phase_start
        self.say(f"{fault.describe()}" + (f" (stack not whole: {unsettled})" if unsettled else ""))
        injected = await INJECTORS[fault.kind](self.stack, fault, self.rng)
        heal = await self.wait_heal(injected)
        heal_s = heal.seconds_after(injected.lifted)
        problems = list(injected.problems)
        if unsettled:
            problems.append(f"started before the stack was whole: {unsettled}")
        result = FaultResult(
            fault.index, fault.kind.value, injected.target, at, injected.lifted - injected.started, heal_s,
            heal.waiting_for, injected.notes, problems,
        )  # fmt: skip
        self.facts.faults.append(result)
        notes = ", ".join(f"{k} {v}" for k, v in injected.notes.items())
        healed = (
            "NOT HEALED, waiting for " + heal.waiting_for if heal_s is None else f"healed in {heal_s:.2f} s"
        )
        self.say(f"  lifted after {result.held_s:.2f} s, {healed}" + (f"; {notes}" if notes else ""))
        for problem in result.problems:
            self.say(f"  PROBLEM: {problem}")
        await asyncio.sleep(fault.gap_s)

    async def poll_counters(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.stack.poll)
            await asyncio.sleep(POLL_EVERY_S)

    def dark(self, end: float) -> list[tuple[str, float, str]]:
        assert self.recorder is not None
        with self.recorder.lock:
            stretches = darkest(self.recorder.log, self.s.pairs, self.phase_start, end)
        out = []
        for d in stretches:
            during = "between faults"
            for f in self.facts.faults:
                start = self.phase_start + f.at_s
                healed = start + f.held_s + (f.heal_s if f.heal_s is not None else 1e9)
                if start - 1.0 <= d.since <= healed + 1.0:
                    during = f"#{f.index} {f.kind}"
            out.append((d.pair, d.seconds, during))
        return out

    def collect(self, final: FinalCheck) -> None:
        assert self.recorder is not None and self.fleet is not None
        facts, stack = self.facts, self.stack
        facts.final = {
            "compared": final.compared, "positions": len(final.positions), "quiet_s": final.quiet_s,
            "synced_s": final.synced_s, "source_events": final.source_events,
            "source_replays": final.source_replays, "problems": final.problems,
        }  # fmt: skip
        facts.divergences = [str(d) for d in final.divergences]
        fleet = self.fleet
        facts.clients = {
            "count": len(fleet.clients),
            "books": sum(len(p) for p in fleet.subscriptions.values()),
            "updates": fleet.updates.count,
            **{name: fleet.total(name) for name in CLIENT_COUNTERS},
        }
        names = {name for counters in stack.counters.values() for name in counters}
        facts.gateway = {n: stack.total("gateway", n) for n in sorted(names) if stack.total("gateway", n)}
        facts.md = {n: stack.total("md", n) for n in MD_COUNTERS}
        with self.recorder.lock:
            log = self.recorder.log
            facts.publications = {
                "messages": log.messages,
                "conflicts": [f"{c.pair} {c.epoch}/{c.seq}" for c in log.conflicts][:50],
                "same_duplicates": log.same_duplicates,
                "holes": log.holes,
                "epochs": sum(len(e) for e in log.epochs.values()),
            }

    async def run(self) -> None:
        """Every phase; a phase that fails ends the run with the failure in the figures."""
        poller: asyncio.Task[None] | None = None
        self.facts.final = {"problems": ["the run did not reach its final check"]}
        try:
            await self.start()
            poller = asyncio.create_task(self.poll_counters())
            await self.faults()
            end = time.monotonic()
            self.facts.dark = self.dark(end)
            self.say("freezing the feed; waiting for quiet, then comparing every book with the exchange's")
            assert self.fleet is not None
            final = await final_check(self.stack, self.fleet, self.s.final_timeout_s)
            await asyncio.to_thread(self.stack.poll)
            self.collect(final)
        except Exception as exc:
            logging.getLogger(__name__).exception("chaos run aborted")
            self.say(f"ABORTED: {type(exc).__name__}: {exc}")
            self.facts.final["problems"].append(f"aborted: {type(exc).__name__}: {exc}")
        finally:
            if poller is not None:
                poller.cancel()
            if self.fleet is not None:
                await self.fleet.close()
            await asyncio.to_thread(self.stack.stop)
            if self.recorder is not None:
                self.recorder.close()
            self.facts.elapsed_s = time.monotonic() - self.t0
            self.facts.machine["load_after"] = machine.load()
            self.facts.tracebacks = [str(t) for t in self.scan_logs()]

    def scan_logs(self) -> list[Traceback]:
        """Tracebacks in the tiers' logs: every incarnation of md, gateway and feed, and the clients'."""
        found = []
        for path in sorted(self.log_dir.glob("*.log")):
            if path.name != "chaos.log":  # this process: the harness, not a tier
                found += find_tracebacks(path.stem, path.read_text(errors="replace"))
        return found


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop where there is one: the verifying clients share this process's one core."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def run(settings: ChaosSettings, out: TextIO, log_dir: Path, command: str, note: str = "") -> dict:
    """Run the suite; the figures (with the verdict) are returned, the progress printed to ``out``.

    The verifying clients' library logs to ``clients.log`` (a tier: checked for tracebacks like
    the others); everything this process logs also goes to ``chaos.log``."""
    form = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = {
        "clients": logging.FileHandler(log_dir / "clients.log"),
        "": logging.FileHandler(log_dir / "chaos.log"),
    }
    for name, handler in handlers.items():
        handler.setFormatter(form)
        logging.getLogger(name).addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    chaos = Run(settings, out, log_dir, command, note)
    try:
        _run_loop(chaos.run())
    finally:
        for name, handler in handlers.items():
            logging.getLogger(name).removeHandler(handler)
            handler.close()
    return figures(chaos.facts)
