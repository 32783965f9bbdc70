"""mdruntime.children: the parent-death signal (and its race), and waiting for children to start."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mdruntime.children import wait_children_ready

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")


def _python(code: str, *args: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )  # fmt: skip


NO_PID = 2**22 + 7  # above Linux's largest pid_max: never the parent's pid
CALL = """
import sys
from mdruntime.children import die_with_parent
die_with_parent(int(sys.argv[1]), int(sys.argv[2]))
print("alive", flush=True)
"""


@linux_only
def test_returns_while_the_parent_is_the_one_named() -> None:
    proc = _python(CALL, str(os.getpid()), str(int(signal.SIGTERM)))
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out, err) == (0, "alive\n", "")


@linux_only
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_exits_at_once_when_the_parent_is_already_gone(sig) -> None:
    proc = _python(CALL, str(NO_PID), str(int(sig)))
    out, _err = proc.communicate(timeout=30)
    assert proc.returncode == -sig
    assert out == ""


@linux_only
def test_exits_even_when_the_signal_is_handled() -> None:
    code = """
    import signal, sys
    signal.signal(signal.SIGTERM, lambda *_: None)  # a handler that does not end the process
    from mdruntime.children import die_with_parent
    die_with_parent(int(sys.argv[1]))
    print("alive", flush=True)
    """
    proc = _python(code, str(NO_PID))
    out, _err = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (128 + signal.SIGTERM, "")


def _gone(pid: int) -> bool:
    """Not running: no such process, or a zombie nobody reaped (no init in a container)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@linux_only
def test_the_child_dies_when_its_parent_is_killed() -> None:
    parent_code = """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c",
        "import os, time\\nfrom mdruntime.children import die_with_parent\\n"
        "die_with_parent(os.getppid())\\nprint('ready', flush=True)\\ntime.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\\n"
    print(child.pid, flush=True)
    time.sleep(60)
    """
    parent = _python(parent_code)
    child_pid = None
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert not _gone(child_pid)
        parent.kill()  # SIGKILL: the parent runs no code of its own any more
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not _gone(child_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(child_pid), "the child outlived its parent"
    finally:
        if child_pid is not None and not _gone(child_pid):
            os.kill(child_pid, signal.SIGKILL)  # first: it holds the parent's stderr open
        parent.kill()
        parent.communicate()


class FakeChild:
    def __init__(self, alive: bool = True) -> None:
        self.alive = alive

    def is_alive(self) -> bool:
        return self.alive


def _queue(*messages: tuple[str, int, object]) -> queue.Queue:
    q: queue.Queue = queue.Queue()
    for message in messages:
        q.put(message)
    return q


def test_ready_once_every_child_reported() -> None:
    results = _queue(("ready", 1, None), ("ready", 0, None))
    wait_children_ready(results, [FakeChild(), FakeChild()], 5.0, "feed process", "feed processes")
    assert results.empty()


def test_a_child_that_could_not_start_fails_the_wait() -> None:
    results = _queue(("ready", 0, None), ("error", 1, "KafkaException: no broker"))
    with pytest.raises(RuntimeError, match=r"^load worker 1 failed to start: KafkaException: no broker$"):
        wait_children_ready(results, [FakeChild(), FakeChild()], 5.0, "load worker", "load workers")


def test_a_child_that_died_fails_the_wait_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"^a feed process died while starting; see its output above$"):
        wait_children_ready(
            _queue(("ready", 0, None)), [FakeChild(), FakeChild(alive=False)], 30.0, "feed process",
            "feed processes",
        )  # fmt: skip
    assert time.monotonic() - started < 5


def test_children_too_slow_to_start_fail_the_wait() -> None:
    with pytest.raises(RuntimeError, match=r"^only 1 of 3 load workers got ready$"):
        children = [FakeChild(), FakeChild(), FakeChild()]
        wait_children_ready(_queue(("ready", 2, None)), children, 0.3, "load worker", "load workers")
