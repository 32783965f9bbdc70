"""A real Redis Cluster (Valkey, cluster mode) of child processes on loopback.

Why (issue 14): sharded Pub/Sub (``SSUBSCRIBE``/``SPUBLISH``) and slot-routed clients only
behave like production against a real cluster — MOVED redirects, per-shard channels, failover
of a primary to its replica. The tests and ``bookcast up --redis-cluster N`` need one without
Docker or anything installed on the machine, so this module forms one from the same valkey
binary and process machinery as :class:`bookcast.embedded_redis.EmbeddedRedis`: every node is an
``EmbeddedRedis`` started with cluster flags (free ports, PID tracking, stop at exit, parent-death
kill, log tails on failure all come from there).

The cluster is formed from Python (``CLUSTER ADDSLOTSRANGE``/``MEET``/``REPLICATE``) and every
wait polls the real condition (``CLUSTER INFO``, ``CLUSTER NODES``, ``INFO replication``) with a
deadline; nothing sleeps in the hope that the cluster has settled. The parsing of what nodes say is
:mod:`bookcast.cluster_view`; this module is one class, the cluster's whole lifecycle (form,
wait, kill, restart, fail over, move a slot, stop), kept together because each step waits on
the same view of the nodes under one lock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import redis
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

from bookcast.cluster_view import (
    SLOT_COUNT,
    ClusterNodeInfo,
    NodeLine,
    even_split,
    merge_ranges,
    parse_nodes,
)
from bookcast.embedded_redis import EmbeddedRedis
from bookcast.loopback import LOOPBACK, free_port
from bookcast.managed_process import EmbeddedServerError

__all__ = ["SLOT_COUNT", "ClusterNodeInfo", "EmbeddedRedisCluster"]

_POLL_INTERVAL = 0.05  # seconds between checks of the cluster's state while waiting
_CLIENT_TIMEOUT = 2.0  # per admin command; a node that takes longer counts as not ready yet
_MIB = 1024 * 1024


class _ClusterServer(EmbeddedRedis):
    """An ``EmbeddedRedis`` in cluster mode whose cluster state survives a restart.

    The per-launch work dir of ``ManagedProcess`` is deleted on every stop, so the cluster config
    file lives in a directory owned by the cluster: a restart on the same ports with the same file
    brings back the same node id, which is how a node rejoins.
    """

    name = "redis-cluster-node"

    def __init__(
        self,
        config_file: Path,
        node_timeout_ms: int,
        port: int | None = None,
        bus_port: int | None = None,
    ) -> None:
        super().__init__(port)
        self._config_file = config_file
        self._node_timeout_ms = node_timeout_ms
        self._fixed_bus_port = bus_port
        self._bus_port: int | None = bus_port

    @property
    def bus_port(self) -> int:
        """The cluster bus port, chosen freely: port + 10000 may be taken or beyond 65535."""
        if self._bus_port is None:
            raise EmbeddedServerError(f"{self.name} has not been started")
        return self._bus_port

    def _args(self, port: int, workdir: Path) -> list[str]:
        bus_port = self._fixed_bus_port
        while bus_port is None or bus_port == port:  # a fresh pick on every start attempt
            bus_port = free_port()
        self._bus_port = bus_port
        return [
            *super()._args(port, workdir),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(self._config_file),
            "--cluster-port",
            str(bus_port),
            "--cluster-node-timeout",
            str(self._node_timeout_ms),
            # Pairs on healthy shards keep flowing while one shard is down.
            "--cluster-require-full-coverage",
            "no",
            # A replica always stands for election, however long its link was down: in tests
            # a crowded machine must not turn a failover into a permanently dead shard.
            "--cluster-replica-validity-factor",
            "0",
            # The default 5 s wait for more replicas would delay every initial sync and rejoin.
            "--repl-diskless-sync-delay",
            "0",
        ]


@dataclass(eq=False)
class _Member:
    """A node slot in the cluster: fixed ports and config file, current process (may be dead)."""

    index: int
    config_file: Path
    process: _ClusterServer
    port: int = 0
    bus_port: int = 0
    node_id: str = ""


def _stop_members(members: list[_Member], root: Path) -> None:
    """Stop every member by its own pid, then delete the cluster's directory (finalizer-safe)."""
    with ThreadPoolExecutor(max(1, len(members)), thread_name_prefix="bookcast-cluster-stop") as pool:
        for future in [pool.submit(member.process.stop) for member in members]:
            with contextlib.suppress(Exception):
                future.result()
    shutil.rmtree(root, ignore_errors=True)


class EmbeddedRedisCluster:
    """``primaries`` Valkey primaries with ``replicas`` replicas each, as one Redis Cluster.

    Node timeout defaults to 1000 ms so that an automatic failover takes a couple of seconds.
    """

    def __init__(self, primaries: int = 3, replicas: int = 1, node_timeout_ms: int = 1000) -> None:
        if primaries < 1:
            raise ValueError("a cluster needs at least one primary")
        if replicas < 0:
            raise ValueError("replicas per primary cannot be negative")
        if node_timeout_ms < 100:
            raise ValueError("node_timeout_ms below 100 makes healthy nodes look failed")
        self.primaries = primaries
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self._lock = threading.RLock()
        self._members: list[_Member] = []
        self._clients: dict[int, redis.Redis] = {}
        self._root: Path | None = None
        self._finalizer: weakref.finalize | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Self:
        """Start every node, form the cluster, return once it is ok and every node agrees."""
        with self._lock:
            if self._members:
                raise EmbeddedServerError("the cluster is already started")
            deadline = time.monotonic() + timeout
            root = Path(tempfile.mkdtemp(prefix="bookcast-redis-cluster-"))
            self._root = root
            total = self.primaries * (1 + self.replicas)
            for index in range(total):
                node_dir = root / f"node-{index}"
                node_dir.mkdir()
                config = node_dir / "nodes.conf"
                self._members.append(_Member(index, config, _ClusterServer(config, self.node_timeout_ms)))
            # The servers must die with us even if stop() is never called; the finalizer also
            # runs at interpreter exit and holds no reference to self.
            self._finalizer = weakref.finalize(self, _stop_members, self._members, root)
            try:
                self._start_processes(deadline)
                self._form(deadline)
            except BaseException:
                self.stop()
                raise
            return self

    def stop(self) -> None:
        """Stop every node by its own pid and delete the cluster's files. Safe to call twice."""
        with self._lock:
            for client in self._clients.values():
                with contextlib.suppress(Exception):
                    client.close()
            self._clients.clear()
            if self._finalizer is not None:
                self._finalizer()  # runs _stop_members once
            self._finalizer = None
            self._members = []
            self._root = None

    def __enter__(self) -> Self:
        if not self._members:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"seeds={self.seeds}" if self._members and self._members[0].node_id else "stopped"
        return f"<{type(self).__name__} {self.primaries}x{1 + self.replicas} {state}>"

    # -- addresses ---------------------------------------------------------------------------

    @property
    def seeds(self) -> str:
        """``host:port,...`` of the nodes started as primaries: startup nodes for cluster clients.

        Stable across failovers (any reachable node lets a client discover the whole cluster).
        """
        members = self._started_members()
        return ",".join(f"{LOOPBACK}:{m.port}" for m in members[: self.primaries])

    @property
    def url(self) -> str:
        """``redis://`` URL of the first primary, for clients that take one URL."""
        return f"redis://{LOOPBACK}:{self._started_members()[0].port}"

    # -- the live cluster --------------------------------------------------------------------

    @property
    def nodes(self) -> list[ClusterNodeInfo]:
        """Every node, read from the live cluster at each access (so it is always fresh).

        A running node describes itself; a stopped node is described by a running peer.
        """
        views = self._views()
        members = self._started_members()
        by_id = {m.node_id: m for m in members}
        chosen: dict[str, NodeLine] = {}
        for member in members:
            own = next((ln for ln in views.get(member.port, []) if "myself" in ln.flags), None)
            if own is not None:
                chosen[member.node_id] = own
        for lines in views.values():
            for line in lines:
                if line.node_id in by_id and line.node_id not in chosen:
                    chosen[line.node_id] = line
        result = []
        for member in members:
            line = chosen.get(member.node_id)
            if line is None:
                continue
            primary = line.is_primary
            result.append(
                ClusterNodeInfo(
                    port=member.port,
                    bus_port=member.bus_port,
                    node_id=member.node_id,
                    role="primary" if primary else "replica",
                    slots=line.slots if primary else (),
                    primary_id=None if primary else line.primary_id,
                    pid=member.process.pid if member.process.running else None,
                    flags=tuple(sorted(line.flags - {"myself"})),
                    config_epoch=line.config_epoch,
                )
            )
        return result

    def node(self, port: int) -> ClusterNodeInfo:
        """The live descriptor of the node on ``port``."""
        for node in self.nodes:
            if node.port == port:
                return node
        raise EmbeddedServerError(f"no node of this cluster on port {port}")

    def primary_for_slot(self, slot: int) -> ClusterNodeInfo:
        """The primary serving ``slot`` now (highest config epoch wins while views converge)."""
        if not 0 <= slot < SLOT_COUNT:
            raise ValueError(f"slot {slot} is outside 0..{SLOT_COUNT - 1}")
        owners = [n for n in self.nodes if n.role == "primary" and n.owns(slot)]
        if not owners:
            raise EmbeddedServerError(f"no primary serves slot {slot}")
        return max(owners, key=lambda n: n.config_epoch)

    def primary_for_key(self, key: str | bytes) -> ClusterNodeInfo:
        """The primary serving ``key`` (hash tags honoured, as redis-py routes it)."""
        return self.primary_for_slot(key_slot(key.encode() if isinstance(key, str) else key))

    def replicas_of(self, primary: ClusterNodeInfo) -> list[ClusterNodeInfo]:
        """The replicas following ``primary`` now."""
        return [n for n in self.nodes if n.role == "replica" and n.primary_id == primary.node_id]

    def client(self, node: ClusterNodeInfo | int) -> redis.Redis:
        """A plain (non-cluster) client of one node, e.g. for ``WAIT`` or per-node commands."""
        return self._client(self._member(node).port)

    # -- faults ------------------------------------------------------------------------------

    def kill(self, node: ClusterNodeInfo | int) -> None:
        """SIGKILL the node's process by its pid (a crash, not a shutdown) and reap it."""
        with self._lock:
            member = self._member(node)
            if not member.process.running:
                raise EmbeddedServerError(f"node {member.port} is not running")
            os.kill(member.process.pid, signal.SIGKILL)
            member.process.stop()  # reaps; afterwards running is False and returncode is -9

    def restart(self, node: ClusterNodeInfo | int, timeout: float = 30.0) -> ClusterNodeInfo:
        """Start a stopped node on its ports with its config file, so it rejoins; wait until ok.

        Nodes keep no data on disk: a primary restarted before its replica took over comes back
        serving its slots empty (a replica that was promoted meanwhile makes it a replica instead).
        """
        with self._lock:
            member = self._member(node)
            if member.process.running:
                raise EmbeddedServerError(f"node {member.port} is still running (pid {member.process.pid})")
            deadline = time.monotonic() + timeout
            member.process = _ClusterServer(
                member.config_file, self.node_timeout_ms, port=member.port, bus_port=member.bus_port
            )
            member.process.start(timeout)
            node_id = self._cmd(member.port, "CLUSTER", "MYID")
            if node_id != member.node_id:
                raise EmbeddedServerError(
                    f"node {member.port} came back as {node_id}, not {member.node_id}: its config was lost"
                )
            self.wait_ok(max(0.0, deadline - time.monotonic()))
            return self.node(member.port)

    def failover(
        self, replica: ClusterNodeInfo | int, takeover: bool = True, timeout: float = 30.0
    ) -> ClusterNodeInfo:
        """Promote ``replica``: ``CLUSTER FAILOVER TAKEOVER`` (no election, no primary needed),
        or the coordinated ``CLUSTER FAILOVER`` with ``takeover=False`` (no write is lost).

        Returns once it serves its former primary's slots and the cluster is ok again.
        """
        with self._lock:
            member = self._member(replica)
            deadline = time.monotonic() + timeout
            current = self.node(member.port)
            if current.role != "replica" or current.primary_id is None:
                raise EmbeddedServerError(f"node {member.port} is not a replica")
            old = next((n for n in self.nodes if n.node_id == current.primary_id), None)
            slots = old.slots if old is not None else ()
            if takeover:
                self._cmd(member.port, "CLUSTER", "FAILOVER", "TAKEOVER")
            else:
                self._cmd(member.port, "CLUSTER", "FAILOVER")

            def promoted() -> str | None:
                now = self.node(member.port)
                if now.role != "primary":
                    return f"node {member.port} is still a {now.role}"
                if set(now.slots) != set(slots):
                    return f"node {member.port} serves {now.slots}, expected {slots}"
                return None

            self._wait_for(f"failover to node {member.port}", promoted, deadline)
            self.wait_ok(max(0.0, deadline - time.monotonic()))
            return self.node(member.port)

    def move_slot(self, slot: int, to: ClusterNodeInfo | int, timeout: float = 30.0) -> ClusterNodeInfo:
        """Migrate ``slot`` with its keys to the primary ``to``, as a resharding does.

        The documented steps: ``SETSLOT IMPORTING`` on the target, ``MIGRATING`` on the source,
        ``MIGRATE`` the keys in batches, then ``SETSLOT NODE`` on every primary. Clients see
        ``ASK``/``TRYAGAIN`` during the move and ``MOVED`` after it, and the source ends the
        slot's sharded subscriptions with a ``sunsubscribe`` push.
        """
        with self._lock:
            deadline = time.monotonic() + timeout
            source = self.primary_for_slot(slot)
            target = self.node(to if isinstance(to, int) else to.port)
            if target.role != "primary":
                raise EmbeddedServerError(f"node {target.port} is not a primary")
            if target.node_id == source.node_id:
                return target
            self._cmd(target.port, "CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
            self._cmd(source.port, "CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
            while keys := self._client(source.port).execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                if time.monotonic() > deadline:
                    raise EmbeddedServerError(f"slot {slot}: keys still migrating after {timeout:.0f} s")
                self._cmd(source.port, "MIGRATE", LOOPBACK, target.port, "", 0, 5000, "KEYS", *keys)
            for primary in [n for n in self.nodes if n.role == "primary" and n.running]:
                self._cmd(primary.port, "CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
            self._wait_for(
                f"slot {slot} to move to {target.port}",
                lambda: None if self.primary_for_slot(slot).port == target.port else "not yet",
                deadline,
            )
            self.wait_ok(max(0.0, deadline - time.monotonic()))
            return self.node(target.port)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until the running nodes form a healthy cluster; raise with the reason if not.

        Healthy: every running node says ``cluster_state:ok``, sees every other running node
        connected and not failed, all agree on the slot map, every slot is served by a running
        primary, and every running replica has its primary link up.
        """
        self._wait_for("the cluster to be ok", self._ok_problem, time.monotonic() + timeout)

    def describe(self) -> str:
        """One status line for logs: seeds, then per node its port, role, slots, pid and memory."""
        members = self._started_members()
        try:
            nodes = {n.port: n for n in self.nodes}
        except (redis.RedisError, EmbeddedServerError) as exc:
            nodes = {}
            unreadable = f" (topology unreadable: {exc})"
        else:
            unreadable = ""
        parts = []
        for member in members:
            node = nodes.get(member.port)
            rss = member.process.rss_bytes()
            memory = "" if rss is None else f" {rss / _MIB:.1f} MiB"
            if not member.process.running:
                state = "down"
            elif node is None:
                state = "unknown"
            elif node.role == "primary":
                state = "primary " + " ".join(f"{lo}-{hi}" for lo, hi in node.slots)
            else:
                primary = next((m.port for m in members if node.primary_id == m.node_id), "?")
                state = f"replica of {primary}"
            pid = member.process.pid if member.process.running else "-"
            parts.append(f"{member.port} {state} (pid {pid}{memory})")
        return f"redis cluster seeds {self.seeds}{unreadable} | " + ", ".join(parts)

    # -- internals ---------------------------------------------------------------------------

    def _started_members(self) -> list[_Member]:
        if not self._members or not self._members[0].node_id:
            raise EmbeddedServerError("the cluster has not been started")
        return self._members

    def _member(self, node: ClusterNodeInfo | int) -> _Member:
        port = node.port if isinstance(node, ClusterNodeInfo) else node
        for member in self._started_members():
            if member.port == port:
                return member
        raise EmbeddedServerError(f"no node of this cluster on port {port}")

    def _client(self, port: int) -> redis.Redis:
        client = self._clients.get(port)
        if client is None:
            client = redis.Redis(
                host=LOOPBACK,
                port=port,
                socket_connect_timeout=_CLIENT_TIMEOUT,
                socket_timeout=_CLIENT_TIMEOUT,
                retry=Retry(NoBackoff(), 0),  # a dead node must fail the probe, not stall it
                decode_responses=True,
            )
            self._clients[port] = client
        return client

    def _cmd(self, port: int, *args: str | int) -> str:
        return self._client(port).execute_command(*args)

    def _start_processes(self, deadline: float) -> None:
        remaining = max(0.0, deadline - time.monotonic())
        with ThreadPoolExecutor(len(self._members), thread_name_prefix="bookcast-cluster") as pool:
            futures = [pool.submit(m.process.start, remaining) for m in self._members]
            errors = [exc for exc in (f.exception() for f in futures) if exc is not None]
        if errors:
            raise errors[0]
        for member in self._members:
            member.port = member.process.port
            member.bus_port = member.process.bus_port
            member.node_id = self._cmd(member.port, "CLUSTER", "MYID")

    def _form(self, deadline: float) -> None:
        primaries = self._members[: self.primaries]
        for epoch, member in enumerate(self._members, start=1):
            # Distinct epochs up front, as redis-cli does: no epoch collisions to resolve later.
            self._cmd(member.port, "CLUSTER", "SET-CONFIG-EPOCH", epoch)
        for member, (lo, hi) in zip(primaries, even_split(self.primaries), strict=True):
            self._cmd(member.port, "CLUSTER", "ADDSLOTSRANGE", lo, hi)
        first = self._members[0]
        for member in self._members[1:]:
            self._cmd(member.port, "CLUSTER", "MEET", LOOPBACK, first.port, first.bus_port)
        everyone = {m.node_id for m in self._members}
        remeet_after = time.monotonic() + 2 * self.node_timeout_ms / 1000

        def all_met() -> str | None:
            nonlocal remeet_after
            problem = None
            for member in self._members:
                known = {ln.node_id for ln in self._view(member.port) if "handshake" not in ln.flags}
                if known == everyone:
                    continue
                problem = problem or f"node {member.port} knows {len(known & everyone)} of {len(everyone)}"
                if time.monotonic() >= remeet_after:
                    # A MEET lost in a handshake that timed out (a crowded machine) is not
                    # retried by the server; introduce the missing peers directly. Idempotent.
                    for peer in self._members:
                        if peer.node_id not in known:
                            self._cmd(member.port, "CLUSTER", "MEET", LOOPBACK, peer.port, peer.bus_port)
            if problem is not None and time.monotonic() >= remeet_after:
                remeet_after = time.monotonic() + 2 * self.node_timeout_ms / 1000
            return problem

        self._wait_for("every node to meet every other", all_met, deadline)
        for offset, member in enumerate(self._members[self.primaries :]):
            primary = primaries[offset // self.replicas]
            self._cmd(member.port, "CLUSTER", "REPLICATE", primary.node_id)
        self.wait_ok(max(0.0, deadline - time.monotonic()))

    def _view(self, port: int) -> list[NodeLine]:
        return parse_nodes(self._cmd(port, "CLUSTER", "NODES"))

    def _views(self) -> dict[int, list[NodeLine]]:
        """``CLUSTER NODES`` of every running node that answers, by port."""
        views = {}
        for member in self._started_members():
            if member.process.running:
                with contextlib.suppress(redis.RedisError):
                    views[member.port] = self._view(member.port)
        if not views:
            raise EmbeddedServerError("no node of the cluster answers")
        return views

    def _ok_problem(self) -> str | None:
        """None if the cluster is healthy (see ``wait_ok``), else what is still wrong."""
        running = [m for m in self._started_members() if m.process.running]
        running_ids = {m.node_id for m in running}
        slot_maps: dict[int, tuple[tuple[int, int, str], ...]] = {}
        primaries: set[str] = set()
        for member in running:
            info = self._client(member.port).cluster("INFO")
            if info.get("cluster_state") != "ok":
                return f"node {member.port} says cluster_state:{info.get('cluster_state')}"
            lines = self._view(member.port)
            by_id = {ln.node_id: ln for ln in lines}
            for other in running:
                line = by_id.get(other.node_id)
                if line is None:
                    return f"node {member.port} does not know node {other.port}"
                if not line.healthy or not (line.connected or "myself" in line.flags):
                    return f"node {member.port} sees node {other.port} as {','.join(sorted(line.flags))}"
            slot_maps[member.port] = merge_ranges(
                (lo, hi, ln.node_id) for ln in lines if ln.is_primary for lo, hi in ln.slots
            )
            myself = by_id[member.node_id]
            if myself.is_primary:
                if myself.slots:
                    primaries.add(member.node_id)
            else:
                replication = self._client(member.port).info("replication")
                if replication.get("master_link_status") != "up":
                    return (
                        f"replica {member.port} has its primary link {replication.get('master_link_status')}"
                    )
        maps = set(slot_maps.values())
        if len(maps) != 1:
            return f"the nodes disagree on the slot map ({len(maps)} versions)"
        (slot_map,) = maps
        covered = sum(hi - lo + 1 for lo, hi, _ in slot_map)
        if covered != SLOT_COUNT:
            return f"{covered} of {SLOT_COUNT} slots are assigned"
        for lo, hi, owner in slot_map:
            if owner not in running_ids:
                return f"slots {lo}-{hi} belong to a node that is down"
            if owner not in primaries:
                return f"slots {lo}-{hi} belong to a node that does not call itself their primary"
        return None

    def _wait_for(self, what: str, problem: Callable[[], str | None], deadline: float) -> None:
        """Poll ``problem`` until it returns None; on the deadline raise with its last answer."""
        last = "not checked yet"
        while True:
            try:
                found = problem()
            except (redis.RedisError, EmbeddedServerError) as exc:
                found = f"{type(exc).__name__}: {exc}"
            if found is None:
                return
            last = found
            if time.monotonic() >= deadline:
                raise EmbeddedServerError(f"timed out waiting for {what}: {last}")
            time.sleep(_POLL_INTERVAL)
