"""The real pipeline of ``bookcast bench realistic``, as child processes that die with the benchmark.

Embedded Tansu and Valkey (:mod:`bookcast.embedded`), then the real commands — ``bookcast md``,
``bookcast gateway --workers 1`` per gateway, ``bookcast feed --scenario zipf`` — started
like ``bookcast up`` starts them (:class:`bookcast.processes.TierProcess`: parent-death
signal, log file, SIGTERM then SIGKILL), each with a Prometheus port of its own so the
benchmark reads what each tier reports. Also: kill and restart a gateway on its port,
pause and resume md_service, and read CPU seconds and memory of every process.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

from bookcast.bench.fanout_report import cpu_seconds, machine_busy_seconds, rss_bytes
from bookcast.bench.realistic_figures import prom_samples, prom_sum
from bookcast.bench.realistic_settings import Settings
from bookcast.embedded import EmbeddedInfra
from bookcast.loopback import free_port
from bookcast.processes import TierProcess
from feed_simulator.scenario import zipf_name
from feed_simulator.topic import ensure_topic
from mdcore.instruments import default_pairs

TOPIC = "bookcast.deltas"
PARTITIONS = 8
SCRAPE_TIMEOUT = 1.0


def scrape(port: int, timeout: float = SCRAPE_TIMEOUT) -> list[tuple[str, dict[str, str], float]] | None:
    """A tier's /metrics samples, or None if it does not answer in time (a stopped or busy process)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as answer:
            return prom_samples(answer.read().decode())
    except (OSError, ValueError):
        return None


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the load generator's workers), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and of everything it started that is still running."""
    return cpu_seconds(pid) + sum(cpu_seconds(child) for child in descendants(pid))


class Stack:
    """Kafka, Redis, md_service, the gateways and the feed of one benchmark run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pairs = default_pairs(settings.pairs)
        self.infra = EmbeddedInfra()
        self.md: TierProcess | None = None
        self.feed: TierProcess | None = None
        self.gateways: list[TierProcess] = []
        self.metrics: dict[str, int] = {}  # tier name -> /metrics port
        self.loads: dict[str, TierProcess] = {}  # load generators, for CPU accounting

    def start(self) -> None:
        s = self.settings
        self.infra.start()
        ensure_topic(self.infra.kafka_bootstrap, TOPIC, PARTITIONS)
        env = {
            "KAFKA_BOOTSTRAP": self.infra.kafka_bootstrap,
            "REDIS_URL": self.infra.redis_url,
            "BOOKCAST_TOPIC": TOPIC,
            "BOOKCAST_LOG_LEVEL": "WARNING",
        }
        self.metrics = {"md": free_port(), "feed": free_port()}
        md_env = {**env, "BOOKCAST_MD_METRICS_PORT": str(self.metrics["md"])}
        self.md = TierProcess("md", "md_service", env=md_env)
        self.md.start()
        for i in range(s.gateways):
            name = f"gateway-{i + 1}"
            self.metrics[name] = free_port()
            gateway_env = {
                **env,
                "BOOKCAST_GATEWAY_METRICS_PORT": str(self.metrics[name]),
                "BOOKCAST_PAIRS": ",".join(self.pairs),
                # A client on every pair must be allowed to follow them all (default 100).
                "BOOKCAST_GATEWAY_MAX_PAIRS": str(max(100, s.pairs)),
            }
            port = free_port()
            gateway = TierProcess(name, "gateway", ["--workers", "1"], gateway_env, listens=True, port=port)
            gateway.start()
            self.gateways.append(gateway)
        feed_args = ["--pairs", str(s.pairs), "--rate", f"{s.rate:g}", "--seed", str(s.seed)]
        feed_args += ["--scenario", zipf_name(s.zipf) if s.zipf > 0 else "steady"]
        feed_env = {**env, "BOOKCAST_FEED_METRICS_PORT": str(self.metrics["feed"])}
        self.feed = TierProcess("feed", "feed_simulator", feed_args, feed_env)
        self.feed.start()

    def md_position(self) -> tuple[int, float | None]:
        """md_service's pair streams, and how far it trails the feed (events delivered - consumed)."""
        md = scrape(self.metrics["md"]) or []
        feed = scrape(self.metrics["feed"]) or []
        consumed = prom_sum(md, "bookcast_md_events_total")
        delivered = prom_sum(feed, "bookcast_feed_events_total")
        behind = None if consumed is None or delivered is None else max(0.0, delivered - consumed)
        return int(prom_sum(md, "bookcast_md_pairs") or 0), behind

    def wait_ready(self, timeout: float, threshold: float) -> tuple[int, float | None]:
        """Wait until md_service has a stream for every pair and trails the feed by less than
        ``threshold`` events (the initial books make its first seconds heavy): clients then
        measure the fan-out, not a start-up backlog. Returns what it reached by then."""
        deadline = time.monotonic() + timeout
        pairs, behind = 0, None
        while time.monotonic() < deadline:
            self.check_alive()
            pairs, behind = self.md_position()
            if pairs >= len(self.pairs) and behind is not None and behind < threshold:
                break
            time.sleep(0.2)
        return pairs, behind

    def check_alive(self) -> None:
        """Raise if a tier died by itself (the benchmark would measure nothing real)."""
        for proc in [self.infra.kafka, self.infra.redis, self.md, self.feed, *self.gateways]:
            if proc is not None and not proc.running:
                raise RuntimeError(f"{proc.name} exited (status {proc.returncode}):\n{proc.log_tail()}")

    @property
    def urls(self) -> list[str]:
        return [g.ws_url for g in self.gateways]

    # --- faults -------------------------------------------------------------------------

    def kill_gateway(self, index: int = 0) -> float:
        """SIGKILL a gateway, as a crash: nothing in it runs. Returns the wall-clock time."""
        gateway = self.gateways[index]
        gateway.kill()
        killed = time.time()
        gateway.stop(timeout=5.0)  # reaps it
        return killed

    def restart_gateway(self, index: int = 0) -> tuple[float, float]:
        """Start the gateway again on its port: (when it was launched, when it answered /health)."""
        launched = time.time()
        self.gateways[index].start(timeout=60.0)
        return launched, time.time()

    def pause_md(self) -> float:
        assert self.md is not None
        os.kill(self.md.pid, signal.SIGSTOP)
        return time.time()

    def resume_md(self) -> float:
        assert self.md is not None
        os.kill(self.md.pid, signal.SIGCONT)
        return time.time()

    # --- what every process costs -------------------------------------------------------

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far per tier (load generators with their workers), and the machine's busy time."""
        out = {
            "kafka": cpu_seconds(self.infra.kafka.pid),
            "redis": cpu_seconds(self.infra.redis.pid),
            "md": cpu_seconds(self.md.pid) if self.md else 0.0,
            "feed": cpu_seconds(self.feed.pid) if self.feed else 0.0,
            "gateways": sum(cpu_seconds(g.pid) for g in self.gateways if g.running),
            "load": sum(tree_cpu_seconds(p.pid) for p in self.loads.values() if p.running),
            "bench": cpu_seconds(os.getpid()),
        }
        out["machine"] = machine_busy_seconds()
        return out

    def gateway_rss(self, index: int = 0) -> int:
        gateway = self.gateways[index]
        return rss_bytes(gateway.pid) if gateway.running else 0

    def broker_rss(self) -> int:
        return self.infra.kafka.rss_bytes() or 0

    def stop(self) -> None:
        """Feed first, md_service last (it writes its last window), then the servers."""
        for proc in [*self.loads.values(), self.feed, *self.gateways, self.md]:
            if proc is not None:
                proc.stop(timeout=10.0)
        self.infra.stop()
