"""The loopback address and free ports for everything bookcast starts on this machine.

Why: the embedded servers, the tiers and the benchmark stacks bind ``127.0.0.1`` only, each on
a port the kernel calls free at start, so runs never collide with each other or with whatever
the machine already runs (a system Redis on 6379, say).
"""

from __future__ import annotations

import socket

__all__ = ["LOOPBACK", "free_port", "port_open"]

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """Ask the kernel for a currently free loopback port (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """True once something accepts TCP connections on the port; cheap pre-check for probes."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.2):
            return True
    except OSError:
        return False
