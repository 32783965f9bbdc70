"""Real Kafka-protocol (Tansu) and Redis-protocol (Valkey) servers started from pip wheels.

Why: the demo and the integration tests must exercise the real wire protocols without Docker,
system services or anything already running on the machine. :class:`EmbeddedInfra` starts both
together, which is what ``bookcast up``, the benchmarks and the test session need. Each server is
its own module (:mod:`bookcast.embedded_kafka`, :mod:`bookcast.embedded_redis`); how they are
started, probed and stopped is :mod:`bookcast.managed_process`, and why they never outlive the
Python process that started them is :mod:`bookcast.child_lifetime`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Self

from bookcast.embedded_kafka import EmbeddedKafka
from bookcast.embedded_redis import EmbeddedRedis
from bookcast.managed_process import ManagedProcess

__all__ = ["EmbeddedInfra"]

_MIB = 1024 * 1024


class EmbeddedInfra:
    """Kafka and Redis together: what the demo and every integration test need."""

    def __init__(self, kafka_port: int | None = None, redis_port: int | None = None) -> None:
        self.kafka = EmbeddedKafka(kafka_port)
        self.redis = EmbeddedRedis(redis_port)

    @property
    def kafka_bootstrap(self) -> str:
        """``bootstrap.servers`` of the embedded broker."""
        return self.kafka.bootstrap

    @property
    def redis_url(self) -> str:
        """``redis://`` URL of the embedded Valkey."""
        return self.redis.url

    def start(self, timeout: float = 30.0) -> Self:
        """Start both servers concurrently; if either fails, stop the other and raise."""
        servers = (self.kafka, self.redis)
        with ThreadPoolExecutor(len(servers), thread_name_prefix="bookcast-embedded") as pool:
            futures = [pool.submit(server.start, timeout) for server in servers]
            errors = [exc for exc in (f.exception() for f in futures) if exc is not None]
        if errors:
            self.stop()
            raise errors[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop both servers (idempotent)."""
        try:
            self.kafka.stop(timeout)
        finally:
            self.redis.stop(timeout)

    def describe(self) -> str:
        """One status line: addresses, pids and resident memory."""

        def mib(server: ManagedProcess) -> str:
            rss = server.rss_bytes()
            return "n/a" if rss is None else f"{rss / _MIB:.1f} MiB"

        return (
            f"kafka {self.kafka.bootstrap} (pid {self.kafka.pid}, rss {mib(self.kafka)}) | "
            f"redis {self.redis.url} (pid {self.redis.pid}, rss {mib(self.redis)})"
        )

    def __enter__(self) -> Self:
        if not (self.kafka.running or self.redis.running):
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
