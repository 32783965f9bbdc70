"""``bookcast up``, the README's demo command: it serves live books and stops without leftovers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from clients import BookClient
from tests.integration.stack_helpers import TIMEOUT

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie is dead, waiting for init to reap it
    except FileNotFoundError:
        return False


async def test_up_serves_books_then_stops_everything_on_sigterm() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP", "REDIS_URL")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bookcast", "up", "--port", "0", "--rate", "100", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        url = None
        while url is None:
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "no banner:\n" + "".join(lines)
            url = next((m.group(0) for line in list(lines) if (m := re.search(r"ws://\S+/ws", line))), None)
            time.sleep(0.05)
        async with BookClient(url, ["BTC-USD", "DOGE-USD"]) as client:
            await client.wait_synced(timeout=TIMEOUT)
            await client.wait_for(lambda: client.stats.deltas >= 3, timeout=TIMEOUT)
            assert client.stats.gaps == 0 and client.stats.checksum_failures == 0
        pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", "".join(lines))]
        assert len(pids) == 2, "".join(lines)  # the embedded broker and Redis
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        reader.join(timeout=5)
        proc.stdout.close()  # type: ignore[union-attr]
    assert code == 0, "".join(lines)
    assert "bookcast stopped" in "".join(lines)
    for pid in pids:
        assert not _alive(pid), f"pid {pid} outlived bookcast up"
