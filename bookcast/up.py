"""``bookcast up``: the whole pipeline on one machine, with one command.

Starts embedded Kafka and Redis unless ``KAFKA_BOOTSTRAP`` / ``REDIS_URL`` point at real
ones, creates the topic, then md_service, the gateway(s) and the feed as child processes.
Prints where to connect, follows the tiers' logs, shows the broker's memory (the embedded
broker keeps every message), and stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import orjson

from bookcast.embedded_cluster import EmbeddedRedisCluster
from bookcast.embedded_kafka import EmbeddedKafka
from bookcast.embedded_redis import EmbeddedRedis
from bookcast.managed_process import EmbeddedServerError, ManagedProcess
from bookcast.processes import TierProcess
from feed_simulator.topic import ensure_topic
from mdcore.settings import SettingError, env_int, env_str

STATUS_EVERY_S = 10.0
MIB = 1024 * 1024
# /metrics ports unless the environment sets them: gateway k (workers +0, +1, …) apart from md and feed
MD_METRICS_PORT, FEED_METRICS_PORT, GATEWAY_METRICS_PORT, GATEWAY_METRICS_STEP = 9101, 9102, 9110, 100
STANDBY_METRICS_OFFSET = 2  # the standby md_service's /metrics: md's port + 2 (9103), the feed's is + 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bookcast up", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=None, help="exchange events/s (default 200)")
    parser.add_argument("--pairs", help="pair count or comma list (default: the 8 named pairs)")
    parser.add_argument(
        "--port", type=int, default=None, help="first gateway port (default 8765; 0 = any free)"
    )
    parser.add_argument("--gateways", type=int, default=1, help="gateway processes (default 1)")
    parser.add_argument("--window-ms", type=int, default=None, help="coalescing window, 50..100")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--quiet", action="store_true", help="do not echo the tiers' logs")
    parser.add_argument(
        "--redis-cluster", type=int, default=0, metavar="N",
        help="run an embedded Redis Cluster of N primaries (each with a replica) instead of one Redis",
    )  # fmt: skip
    parser.add_argument(
        "--standby", action="store_true",
        help="also run a hot-standby md_service (takes over within a second if md stops)",
    )  # fmt: skip
    return parser


@dataclass
class LogFollower:
    """Echoes new lines of a child's log file with a prefix (the file may not exist yet)."""

    path: Path
    prefix: str
    offset: int = 0
    partial: bytes = field(default=b"")

    def pump(self, out: TextIO) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            out.write(f"{self.prefix} {line.decode(errors='replace')}\n")
        out.flush()


class Demo:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.infra: list[ManagedProcess] = []
        self.tiers: list[TierProcess] = []
        self.followers: list[LogFollower] = []
        self.stop = threading.Event()
        self.kafka: EmbeddedKafka | None = None
        self.cluster: EmbeddedRedisCluster | None = None  # its nodes may fail over: not in ``infra``
        self.metrics: list[tuple[str, int]] = []  # (tier, first /metrics port)
        self.redis_url = ""

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def start(self) -> None:
        env = os.environ
        bootstrap = env.get("KAFKA_BOOTSTRAP", "").strip()
        redis_url = env.get("REDIS_URL", "").strip()
        if not bootstrap:
            self.kafka = EmbeddedKafka().start()
            self.infra.append(self.kafka)
            bootstrap = self.kafka.bootstrap
            self.say(f"kafka   embedded Tansu at {bootstrap} (pid {self.kafka.pid})")
        else:
            self.say(f"kafka   {bootstrap} (KAFKA_BOOTSTRAP)")
        cluster_seeds = env.get("REDIS_CLUSTER", "").strip()
        if self.args.redis_cluster and not redis_url and not cluster_seeds:
            if not 1 <= self.args.redis_cluster <= 16:
                raise SettingError(f"--redis-cluster={self.args.redis_cluster}: 1 to 16 primaries")
            self.cluster = EmbeddedRedisCluster(primaries=self.args.redis_cluster, replicas=1).start()
            redis_url, cluster_seeds = self.cluster.url, self.cluster.seeds
            self.say(f"redis   embedded Valkey cluster: {self.cluster.describe()}")
        elif cluster_seeds:
            redis_url = redis_url or f"redis://{cluster_seeds.split(',')[0].strip()}"
            self.say(f"redis   cluster {cluster_seeds} (REDIS_CLUSTER)")
        elif not redis_url:
            redis = EmbeddedRedis().start()
            self.infra.append(redis)
            redis_url = redis.url
            self.say(f"redis   embedded Valkey at {redis_url} (pid {redis.pid})")
        else:
            self.say(f"redis   {redis_url} (REDIS_URL)")
        topic = env_str(env, "BOOKCAST_TOPIC", "bookcast.deltas")
        partitions = env_int(env, "BOOKCAST_PARTITIONS", 8, 1, 10_000)
        # Before anyone subscribes: Tansu auto-creates a topic it is asked about, with 4 partitions.
        ensure_topic(bootstrap, topic, partitions)
        tier_env = {"KAFKA_BOOTSTRAP": bootstrap, "REDIS_URL": redis_url}
        if cluster_seeds:
            tier_env["REDIS_CLUSTER"] = cluster_seeds
        self.redis_url = redis_url
        if self.args.window_ms is not None:
            tier_env["BOOKCAST_WINDOW_MS"] = str(self.args.window_ms)
        md_port = env_int(env, "BOOKCAST_MD_METRICS_PORT", MD_METRICS_PORT, 0, 65535)
        feed_port = env_int(env, "BOOKCAST_FEED_METRICS_PORT", FEED_METRICS_PORT, 0, 65535)
        gateway_port = env_int(env, "BOOKCAST_GATEWAY_METRICS_PORT", GATEWAY_METRICS_PORT, 0, 65535)
        self._start_tier(
            TierProcess("md", "md_service", env={**tier_env, "BOOKCAST_MD_METRICS_PORT": str(md_port)})
        )
        self.metrics.append(("md", md_port))
        if self.args.standby:
            standby_port = md_port + STANDBY_METRICS_OFFSET if md_port else 0
            standby_env = {
                **tier_env,
                "BOOKCAST_MD_ROLE": "standby",
                "BOOKCAST_MD_METRICS_PORT": str(standby_port),
            }
            self._start_tier(TierProcess("md-standby", "md_service", env=standby_env))
            self.metrics.append(("md-standby", standby_port))
        first_port = (
            self.args.port
            if self.args.port is not None
            else env_int(env, "BOOKCAST_GATEWAY_PORT", 8765, 0, 65535)
        )
        for i in range(self.args.gateways):
            port = first_port + i if first_port else None
            metrics_port = gateway_port + GATEWAY_METRICS_STEP * i if gateway_port else 0
            gateway_env = {**tier_env, "BOOKCAST_GATEWAY_METRICS_PORT": str(metrics_port)}
            self._start_tier(
                TierProcess(f"gateway-{i + 1}", "gateway", env=gateway_env, listens=True, port=port)
            )
            self.metrics.append((f"gateway-{i + 1}", metrics_port))
        feed_args = []
        if self.args.rate is not None:
            feed_args += ["--rate", str(self.args.rate)]
        if self.args.pairs:
            feed_args += ["--pairs", self.args.pairs]
        feed_env = {**tier_env, "BOOKCAST_FEED_METRICS_PORT": str(feed_port)}
        self._start_tier(TierProcess("feed", "feed_simulator", feed_args, env=feed_env))
        self.metrics.append(("feed", feed_port))

    def _start_tier(self, tier: TierProcess) -> None:
        tier.start()
        self.tiers.append(tier)
        if not self.args.quiet:
            self.followers.append(LogFollower(tier.log_path, f"[{tier.name}]"))

    def banner(self) -> None:
        gateways = [t for t in self.tiers if t.name.startswith("gateway")]
        first = gateways[0]
        self.say("")
        self.say("bookcast is up")
        for gw in gateways:
            self.say(f"  websocket  {gw.ws_url}")
            self.say(
                f"  rest       {gw.http_url}/health  {gw.http_url}/pairs  {gw.http_url}/snapshot/BTC-USD"
            )
        self.say(f"  dashboard  {first.http_url}/dashboard")
        self.say(f"  book page  {first.http_url}/book/BTC-USD")
        self.say(f"  watch      bookcast watch BTC-USD --url {first.ws_url}")
        self.say(f"  load       bookcast load --url {first.ws_url} --redis-url {self.redis_url}")
        for tier, port in self.metrics:
            if port:
                worker = "  (+1 per worker)" if tier.startswith("gateway") else ""
                self.say(f"  metrics    http://127.0.0.1:{port}/metrics  {tier}{worker}")
        self.say("  stop       Ctrl-C")
        self.say("")

    def status(self) -> str:
        parts = []
        if self.kafka is not None:
            rss = self.kafka.rss_bytes()
            parts.append(
                f"broker rss {rss / MIB:.1f} MiB (embedded: keeps every message)" if rss else "broker ?"
            )
        for tier in self.tiers:
            if tier.name.startswith("gateway"):
                parts.append(f"{tier.name} {_health_summary(tier)}")
        return "status: " + " | ".join(parts)

    def run(self) -> int:
        deadline = time.monotonic() + self.args.duration if self.args.duration else None
        next_status = time.monotonic() + STATUS_EVERY_S
        while not self.stop.wait(0.25):
            for follower in self.followers:
                follower.pump(self.out)
            for proc in [*self.infra, *self.tiers]:
                if not proc.running:
                    self.say(
                        f"{proc.name} exited unexpectedly (status {proc.returncode}):\n{proc.log_tail()}"
                    )
                    return 1
            now = time.monotonic()
            if now >= next_status:
                next_status = now + STATUS_EVERY_S
                self.say(self.status())
            if deadline is not None and now >= deadline:
                break
        return 0

    def shutdown(self) -> None:
        for tier in reversed(self.tiers):  # feed first, md_service last: it flushes its window
            tier.stop(timeout=10.0)
        for follower in self.followers:
            follower.pump(self.out)
        for proc in reversed(self.infra):
            proc.stop()
        if self.cluster is not None:
            self.cluster.stop()
        self.say("bookcast stopped")


def _health_summary(tier: TierProcess) -> str:
    import http.client

    try:
        conn = http.client.HTTPConnection("127.0.0.1", tier.port, timeout=1.0)
        conn.request("GET", "/health")
        body = orjson.loads(conn.getresponse().read())
        conn.close()
    except (OSError, orjson.JSONDecodeError) as exc:
        return f"health unavailable ({exc})"
    return f"{body.get('status')} redis={body.get('redis')} clients={body.get('connections')}"


@contextlib.contextmanager
def _signals_set(stop: threading.Event) -> Iterator[None]:
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.gateways < 1:
        print("bookcast up: --gateways must be at least 1", file=sys.stderr)
        return 2
    demo = Demo(args, sys.stdout)
    with _signals_set(demo.stop):
        try:
            demo.start()
            demo.banner()
            return demo.run()
        except (EmbeddedServerError, SettingError) as exc:
            print(f"bookcast up: {exc}", file=sys.stderr)
            return 1
        finally:
            demo.shutdown()
