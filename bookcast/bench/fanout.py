"""``bookcast bench fanout``: delivered deltas, frames, bytes, latency and memory of one gateway
process for thousands of clients, against a bare ``websockets.broadcast`` server and the naive
design, in the same run, on real (embedded) Redis.

For each client count and server: a synthetic md_service publishes real deltas for 8 pairs
into Redis every window (md_service's layout), lean receivers in separate processes connect
and subscribe to every pair, idle memory is read, then after a warm-up the run is measured
for ``--seconds``. A saturation run (short windows) shows frames/s at the ceiling. Medians
over ``--repeats``. See docs/gateway.md for figures and how to read them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack, suppress
from pathlib import Path

from bookcast.bench.fanout_load import worker_main
from bookcast.bench.fanout_publisher import publisher_main
from bookcast.bench.fanout_report import (
    RunResult,
    combine,
    cpu_seconds,
    cpu_split,
    cpu_times,
    goals,
    machine_busy_seconds,
    merge_histograms,
    percentiles_ms,
    ratios,
    rss_bytes,
    table,
    window_cpu_bound_ms,
)  # fmt: skip
from bookcast.embedded_redis import EmbeddedRedis
from bookcast.loopback import free_port
from mdcore.instruments import NAMED_PAIRS

SERVERS = ("gateway", "bare", "naive")
HOST = "127.0.0.1"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bookcast bench fanout", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", default="1000,5000,10000", help="client counts (comma list)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of traffic before measuring")
    p.add_argument("--window-ms", type=float, default=100.0, help="coalescing window of the publisher")
    p.add_argument("--pairs", type=int, default=8, help="pairs every client subscribes to (1..8)")
    p.add_argument("--events", type=int, default=5, help="exchange events per pair per window")
    p.add_argument("--servers", default=",".join(SERVERS), help="which servers (gateway,bare,naive)")
    p.add_argument("--load-procs", type=int, default=max(2, os.cpu_count() or 2), help="load processes")
    p.add_argument("--repeats", type=int, default=1, help="repeat every run; the medians are reported")
    p.add_argument(
        "--saturation-clients", type=int, default=1000, help="clients of the saturation run (0: none)"
    )
    p.add_argument("--saturation-window-ms", type=float, default=5.0, help="window of the saturation run")
    p.add_argument("--json", type=Path, help="also write every figure to this file")
    return p


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} during start-up")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s")


def start_server(kind: str, port: int, redis_url: str, prefix: str, args: argparse.Namespace,
                 pairs: list[str], window_ms: float) -> subprocess.Popen[bytes]:  # fmt: skip
    if kind == "gateway":
        cmd = [sys.executable, "-m", "gateway", "--workers", "1", "--host", HOST, "--port", str(port)]
        env = {
            **os.environ, "REDIS_URL": redis_url, "BOOKCAST_REDIS_PREFIX": prefix,
            "BOOKCAST_PAIRS": ",".join(pairs), "BOOKCAST_LOG_LEVEL": "WARNING",
            "BOOKCAST_GATEWAY_METRICS_PORT": str(free_port()),  # as deployed, on a port of its own
            "BOOKCAST_GATEWAY_MAX_CONNECTIONS": "100000", "BOOKCAST_GATEWAY_MAX_CONNECTIONS_PER_IP": "0",
        }  # fmt: skip
    else:
        cmd = [sys.executable, "-m", "bookcast.bench.fanout_servers", kind, "--port", str(port),
               "--pairs", ",".join(pairs), "--window-ms", str(window_ms), "--events", str(args.events),
               "--redis-url", redis_url, "--prefix", prefix]  # fmt: skip
        env = dict(os.environ)
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc


class LoadPool:
    """``n`` load processes, each a pipe away."""

    def __init__(self, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes = []
        self.procs = []
        for _ in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child,), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def ask(self, command: str, args: object = None, timeout: float = 600.0) -> list[dict]:
        for pipe in self.pipes:
            pipe.send((command, args))
        replies = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise RuntimeError(f"a load process did not answer {command!r} within {timeout}s")
            replies.append(pipe.recv())
        return replies

    def connect(self, port: int, clients: int, pairs: list[str]) -> int:
        share = [clients // len(self.pipes) + (i < clients % len(self.pipes)) for i in range(len(self.pipes))]
        first = 0
        for pipe, count in zip(self.pipes, share, strict=True):
            pipe.send(("connect", (HOST, port, "/ws", count, pairs, first)))
            first += count
        return sum(pipe.recv()["connected"] for pipe in self.pipes)

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def close(self) -> None:
        with suppress(RuntimeError, OSError, EOFError):
            self.ask("stop", timeout=30)
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()


def run_one(kind: str, clients: int, window_ms: float, args: argparse.Namespace, redis: EmbeddedRedis,
            pairs: list[str]) -> RunResult:  # fmt: skip
    result = RunResult(kind, clients, window_ms, args.seconds)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    ctx = mp.get_context("spawn")
    with ExitStack() as stack:
        pub_pipe = None
        pub_proc = None
        if kind != "bare":
            pub_pipe, child = ctx.Pipe()
            pub_proc = ctx.Process(target=publisher_main, args=(child, redis.url, prefix, pairs, args.events))
            pub_proc.start()
            stack.callback(_end_process, pub_proc)
            pub_pipe.recv()  # the streams exist before the server starts
        port = free_port()
        server = start_server(kind, port, redis.url, prefix, args, pairs, window_ms)
        stack.callback(_stop, server)
        load = LoadPool(args.load_procs)
        stack.callback(load.close)
        time.sleep(0.5)
        rss0 = rss_bytes(server.pid)
        result.connected = load.connect(port, clients, pairs)
        time.sleep(1.0)
        result.kib_per_connection = (rss_bytes(server.pid) - rss0) / 1024 / max(result.connected, 1)
        if pub_pipe is not None:
            pub_pipe.send(("start", window_ms))
        else:
            server.send_signal(signal.SIGUSR1)  # bare: start broadcasting
        time.sleep(args.warmup)
        marks = load.ask("measure", True)
        pids = [server.pid, pub_proc.pid if pub_proc else 0, redis.pid]
        user0 = cpu_times(server.pid)[0]
        cpu0, busy0, self0 = _cpu(pids, load), machine_busy_seconds(), cpu_seconds(os.getpid())
        t0 = time.monotonic()
        time.sleep(args.seconds)
        marks = load.ask("mark")
        elapsed = time.monotonic() - t0
        cpu1, busy1, self1 = _cpu(pids, load), machine_busy_seconds(), cpu_seconds(os.getpid())
        user1 = cpu_times(server.pid)[0]
        hists = load.ask("histograms")
        if pub_pipe is not None:
            pub_pipe.send(("stop", None))
            done = pub_pipe.recv()
            result.windows_published, result.late_windows = done["windows"], done["late"]
        frames = sum(m["frames"] for m in marks)
        result.frames_per_s = frames / elapsed
        result.deltas_per_s = sum(m["deltas"] for m in marks) / elapsed
        result.bytes_per_s = sum(m["bytes"] for m in marks) / elapsed
        result.snapshots = sum(m["snapshots"] for m in marks)
        result.closed = sum(m["closed"] for m in marks)
        result.server_cpu, result.load_cpu, result.publisher_cpu, result.redis_cpu = (
            (b - a) / elapsed for a, b in zip(cpu0, cpu1, strict=True)
        )
        ours = sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) + (self1 - self0)
        result.other_cpu = max(0.0, (busy1 - busy0 - ours) / elapsed)
        if frames:
            result.server_us_per_frame = result.server_cpu * elapsed / frames * 1e6
            result.server_user_us_per_frame = (user1 - user0) / frames * 1e6
        result.window_latency_ms = percentiles_ms(merge_histograms([h["window"] for h in hists]))
        result.exchange_latency_ms = percentiles_ms(merge_histograms([h["exchange"] for h in hists]))
    return result


def _cpu(pids: list[int], load: LoadPool) -> tuple[float, float, float, float]:
    """CPU seconds so far of the server, the load processes, the publisher and Redis."""
    server, publisher, redis = (cpu_seconds(pid) if pid else 0.0 for pid in pids)
    return server, load.cpu(), publisher, redis


def _end_process(proc: mp.process.BaseProcess) -> None:
    proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    counts = [int(c) for c in args.clients.split(",") if c.strip()]
    servers = [s for s in args.servers.split(",") if s]
    if not 1 <= args.pairs <= len(NAMED_PAIRS) or any(s not in SERVERS for s in servers):
        print(
            "bookcast bench fanout: --pairs must be 1..8, --servers from gateway,bare,naive", file=sys.stderr
        )
        return 2
    pairs = list(NAMED_PAIRS[: args.pairs])
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    need = max([*counts, args.saturation_clients]) + 1000
    if hard < need:
        print(
            f"warning: the descriptor limit is {hard}; {need} are needed for the largest run", file=sys.stderr
        )
    plan = [(kind, n, args.window_ms) for n in counts for kind in servers]
    if args.saturation_clients:
        plan += [(k, args.saturation_clients, args.saturation_window_ms) for k in servers if k != "naive"]
    runs: dict[tuple[str, int, float], list[RunResult]] = {}
    print(
        f"bookcast bench fanout: {len(plan)} runs x {args.repeats}, {args.seconds:g}s each, "
        f"{len(pairs)} pairs, {args.load_procs} load processes, {os.cpu_count()} cores",
        flush=True,
    )
    with EmbeddedRedis() as redis:
        for repeat in range(args.repeats):
            for kind, n, window in plan:
                started = time.monotonic()
                result = run_one(kind, n, window, args, redis, pairs)
                runs.setdefault((kind, n, window), []).append(result)
                print(f"  [{repeat + 1}/{args.repeats}] {kind:<8} {n:>6} clients {window:>5g} ms: "
                      f"{result.frames_per_s:>9,.0f} frames/s, {result.deltas_per_s:>10,.0f} deltas/s, "
                      f"win p99 {result.window_latency_ms.get('p99') or 0:.1f} ms, "
                      f"server {result.server_cpu:.2f} cores ({time.monotonic() - started:.0f}s)",
                      flush=True)  # fmt: skip
    results = [combine(rs) for rs in runs.values()]
    print()
    print(table(results))
    print()
    for line in ratios(results):
        print(line)
    cores = os.cpu_count() or 1
    print("\nCPU (cores busy, of", cores, "):")
    for line in cpu_split(results, cores):
        print("  " + line)
    print("\ngoals:")
    for line in goals(results, args.saturation_window_ms, cores):
        print("  " + line)
    if args.json:
        figures = [{**r.as_dict(), "window_cpu_bound_ms": window_cpu_bound_ms(r, cores)} for r in results]
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"\nwrote {args.json}")
    return 0
