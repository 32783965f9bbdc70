"""Operating-system limits that thousands of connections run into, raised or explained.

A process may open at most ``RLIMIT_NOFILE`` files and sockets. The soft limit (often
1024) can be raised by the process itself up to the hard limit, so the load generator does
that before starting its workers (they inherit it). Past the hard limit only an
administrator can help, and the message says how. The ephemeral port range caps the
connections from one local address to one server address:port; that is checked too.
"""

from __future__ import annotations

import contextlib
import math
import resource
from dataclasses import dataclass
from pathlib import Path

FD_MARGIN = 64  # descriptors a worker needs besides its sockets (pipes, logs, the loop)
PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


@dataclass(frozen=True, slots=True)
class FdLimit:
    needed: int  # per process
    soft_before: int
    soft: int  # after raising
    hard: int

    @property
    def enough(self) -> bool:
        return self.soft >= self.needed

    def explain(self, connections: int, processes: int) -> str:
        """What to do when even the hard limit is too low."""
        hard = "unlimited" if self.hard == resource.RLIM_INFINITY else f"{self.hard:,}"
        return (
            f"{connections:,} connections over {processes} process(es) need about {self.needed:,} "
            f"open files per process, but this system allows at most {hard} (the hard limit of "
            f"RLIMIT_NOFILE; the soft limit was {self.soft_before:,} and was raised to {self.soft:,}). "
            "Raise the hard limit as an administrator — `ulimit -Hn 1048576` in a root shell, "
            "LimitNOFILE= in a systemd unit, `nofile` in /etc/security/limits.conf, or "
            "--ulimit nofile=1048576 for a container — or use fewer connections."
        )


def needed_per_process(connections: int, processes: int) -> int:
    return math.ceil(connections / max(1, processes)) + FD_MARGIN


def raise_fd_limit(needed: int) -> FdLimit:
    """Raise the soft ``RLIMIT_NOFILE`` towards ``needed`` (never above the hard limit, never down)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):  # e.g. macOS refuses more than OPEN_MAX
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    raised, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    effective = needed if raised == resource.RLIM_INFINITY else raised
    return FdLimit(needed, soft, effective, hard)


def ephemeral_ports(path: Path = PORT_RANGE) -> int | None:
    """How many local ports one (local address, server address:port) pair can use; None if unknown."""
    try:
        low, high = (int(x) for x in path.read_text().split())
    except (OSError, ValueError):
        return None
    return high - low + 1
