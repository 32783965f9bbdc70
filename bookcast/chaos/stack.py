"""The whole pipeline on loopback for one chaos run, and what each tier says about itself.

Embedded Kafka (Tansu) and Redis (Valkey), the real feed, ``md_instances`` md_services in
one consumer group, ``gateways`` gateways, each a child process (:mod:`bookcast.chaos.tiers`).
Redis gets a fixed port so that, killed, it restarts empty where everyone expects it.
Counters are read from md_service's status key and each gateway's ``/health`` and kept per
incarnation, so a killed process's counts are not lost with it.
"""

from __future__ import annotations

import http.client
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import orjson
import redis
from confluent_kafka import Consumer, TopicPartition

from bookcast.chaos.settings import ChaosSettings
from bookcast.chaos.tiers import Tier
from bookcast.embedded_kafka import EmbeddedKafka
from bookcast.embedded_redis import EmbeddedRedis
from bookcast.loopback import free_port
from bookcast.processes import tier_env
from feed_simulator.topic import ensure_topic
from mdcore.local_book import LocalBook
from mdcore.redis_layout import READ_BOOK_LUA, RedisLayout, StoredState, rebuild_book
from mdcore.status_bus import decode_status, status_key

HTTP_TIMEOUT_S = 2.0


class ChaosStack:
    def __init__(self, settings: ChaosSettings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        run = uuid.uuid4().hex[:8]
        self.topic, self.prefix, self.group = f"chaos-{run}", f"chaos{run}", f"chaos-md-{run}"
        self.layout = RedisLayout(self.prefix, settings.partitions)
        self.kafka = EmbeddedKafka()
        self.redis = EmbeddedRedis(port=free_port())
        self.feed: Tier | None = None
        self.mds: list[Tier] = []
        self.gateways: list[Tier] = []
        # per incarnation, the last counters seen: {"md-1.2": {...}, "gateway-1.1": {...}}
        self.counters: dict[str, dict[str, int]] = {}

    # --- start and stop ----------------------------------------------------------------------

    def start_infra(self) -> None:
        self.kafka.start()
        self.redis.start()
        ensure_topic(self.kafka.bootstrap, self.topic, self.settings.partitions)

    def tier_env(self) -> dict[str, str]:
        s = self.settings
        state_dir = self.log_dir / "md-state"  # shared by the instances, as on one host
        state_dir.mkdir(exist_ok=True)
        return tier_env(
            self.kafka.bootstrap, self.redis.url,
            topic=self.topic, redis_prefix=self.prefix, md_group=self.group, pairs=",".join(s.pairs),
            md_state_dir=str(state_dir), partitions=str(s.partitions), **s.tier_settings,
        )  # fmt: skip

    def start_tiers(self) -> None:
        """md_services, then gateways, then the feed (md_service is in the group before events flow)."""
        s, env = self.settings, self.tier_env()
        for i in range(1, s.md_instances + 1):
            md = Tier(f"md-{i}", "md_service", self.log_dir, env, instance_env="BOOKCAST_MD_INSTANCE")
            md.start()
            self.mds.append(md)
        for i in range(1, s.gateways + 1):
            gateway = Tier(f"gateway-{i}", "gateway", self.log_dir, env, listens=True)
            gateway.start()
            self.gateways.append(gateway)
        feed_args = ["--seed", str(s.seed), "--rate", str(s.feed_rate), "--progress-interval", "30"]
        self.feed = Tier("feed", "feed_simulator", self.log_dir, env, args=feed_args)
        self.feed.start()

    def tiers(self) -> list[Tier]:
        return [*self.mds, *self.gateways, *([self.feed] if self.feed else [])]

    def tier(self, name: str) -> Tier:
        return next(t for t in self.tiers() if t.name == name)

    def stop(self) -> None:
        """Everything, feed first; frozen servers are woken so they can exit."""
        for tier in reversed(self.tiers()):
            if tier.proc is not None:
                self.poll_tier(tier)
                tier.stop()
        for server in (self.kafka, self.redis):
            if server.running:
                os.kill(server.pid, signal.SIGCONT)
            server.stop()

    def restart_redis_empty(self) -> None:
        """Redis is SIGKILLed and comes back on its port with nothing in it."""
        os.kill(self.redis.pid, signal.SIGKILL)
        self.redis.stop()  # reaps it; an EmbeddedRedis made with a port starts on it again
        self.redis.start()

    # --- what the tiers say -----------------------------------------------------------------

    def redis_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url, socket_timeout=2.0, socket_connect_timeout=1.0)

    def md_status(self, instance: str) -> dict[str, Any] | None:
        """The instance's status on the status bus (counters, partitions), None if absent."""
        client = self.redis_client()
        try:
            raw = client.get(status_key(self.prefix, "md", instance))
        except redis.RedisError:
            return None
        finally:
            client.close()
        return decode_status(raw)

    def owned(self, md: Tier) -> list[int]:
        status = self.md_status(md.instance) if md.running and not md.frozen else None
        return list(status["partitions"]) if status else []

    def health(self, gateway: Tier) -> dict[str, Any] | None:
        if not gateway.running or gateway.port is None:
            return None
        try:
            conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=HTTP_TIMEOUT_S)
            conn.request("GET", "/health")
            body = orjson.loads(conn.getresponse().read())
            conn.close()
        except (OSError, orjson.JSONDecodeError, http.client.HTTPException):
            return None
        return body if isinstance(body, dict) else None

    def snapshot(self, gateway: Tier, pair: str) -> tuple[int, dict[str, Any] | None, float]:
        """``GET /snapshot/{pair}``: status, body, and Retry-After (0 if none)."""
        assert gateway.port is not None
        conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=HTTP_TIMEOUT_S * 2)
        try:
            conn.request("GET", f"/snapshot/{pair}")
            response = conn.getresponse()
            raw = response.read()
            retry = float(response.getheader("Retry-After") or 0)
            return response.status, orjson.loads(raw) if raw else None, retry
        finally:
            conn.close()

    def poll_tier(self, tier: Tier) -> None:
        """Remember the tier's current counters under its incarnation's name."""
        if not tier.running or tier.frozen:
            return
        if tier in self.mds:
            status = self.md_status(tier.instance)
            counters = status.get("counters") if status else None
        elif tier in self.gateways:
            body = self.health(tier)
            counters = body.get("counters") if body else None
        else:
            return
        if isinstance(counters, dict):
            self.counters[tier.instance] = {k: v for k, v in counters.items() if isinstance(v, int)}

    def poll(self) -> None:
        for tier in [*self.mds, *self.gateways]:
            self.poll_tier(tier)

    def total(self, kind: str, *names: str) -> int:
        """A counter summed over every incarnation of every tier of ``kind`` ("md", "gateway")."""
        return sum(
            counters.get(name, 0)
            for instance, counters in self.counters.items()
            if instance.startswith(kind)
            for name in names
        )

    def counter(self, tier: Tier, name: str) -> int:
        return self.counters.get(tier.instance, {}).get(name, 0)

    # --- Redis and Kafka, read directly ------------------------------------------------------

    def stored(self, pair: str) -> tuple[StoredState, LocalBook] | None:
        client = self.redis_client()
        try:
            return rebuild_book(pair, client.eval(READ_BOOK_LUA, 3, *self.layout.book_keys(pair)))
        finally:
            client.close()

    def stored_offsets(self) -> dict[int, int]:
        """The Kafka offset md_service resumes each partition at, as stored with its windows."""
        client = self.redis_client()
        try:
            out = {}
            for p in range(self.settings.partitions):
                value = client.hget(self.layout.md_key(p, self.topic), f"offset:{p}")
                if value is not None:
                    out[p] = int(value)
            return out
        finally:
            client.close()

    def watermarks(self) -> dict[int, int]:
        consumer = Consumer(
            {"bootstrap.servers": self.kafka.bootstrap, "group.id": f"wm-{uuid.uuid4().hex[:6]}"}
        )
        try:
            return {
                p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
                for p in range(self.settings.partitions)
            }
        finally:
            consumer.close()
