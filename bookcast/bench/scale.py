"""``bookcast bench scale``: sharded Pub/Sub delivery against 1, 2 and 3 primaries (issue 14).

For every shard count k an embedded Redis Cluster of k primaries (no replicas) is formed;
``--pairs`` channels in md_service's layout (``RedisLayout.delta_channel``, hash tag ``{pN}``
per partition) land on the primaries by slot. ``--subscribers`` lean subscribers in
``--sub-processes`` processes each hold one connection per primary, ``SSUBSCRIBE``d to every
channel that primary owns; then the same publisher (``--pub-processes`` processes, one closed
loop per primary of ``SPUBLISH`` batches in Lua) runs for ``--seconds``. Reported per k:
messages published/s, delivered/s (should be published x subscribers), delivered per shard,
CPU of every Valkey process, of the publisher and subscriber processes and of the rest of the
machine, and delivered(k)/delivered(1); a verdict says where the cores stop the growth.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from contextlib import ExitStack, suppress
from multiprocessing.connection import Connection
from pathlib import Path

from bookcast.bench.fanout_report import cpu_seconds, machine_busy_seconds
from bookcast.bench.scale_load import Target, counting_cost, publisher_main, subscriber_main
from bookcast.bench.scale_report import ShardRun, machine, table, verdict
from bookcast.embedded_cluster import EmbeddedRedisCluster
from bookcast.loopback import LOOPBACK
from mdcore.instruments import default_pairs
from mdcore.redis_layout import RedisLayout

ANSWER_S = 60.0  # bound on every answer of a child process


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bookcast bench scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--shards", default="1,2,3", help="primary counts to run (comma list)")
    p.add_argument("--pairs", type=int, default=64, help="pairs, one channel each")
    p.add_argument("--partitions", type=int, default=8, help="partitions the pairs are spread over")
    p.add_argument(
        "--subscribers", type=int, default=32, help="subscribers (each one connection per primary)"
    )
    p.add_argument("--sub-processes", type=int, default=2, help="processes the subscribers run in")
    p.add_argument("--pub-processes", type=int, default=1, help="publisher processes")
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per shard count")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of traffic before measuring")
    p.add_argument("--batch", type=int, default=200, help="messages SPUBLISHed per script call")
    p.add_argument("--message-bytes", type=int, default=300, help="payload size (a real delta's)")
    p.add_argument("--depth", type=int, default=2, help="script calls per pipeline round trip")
    p.add_argument(
        "--backlog-kib",
        type=int,
        default=4096,
        help="pause publishing while a subscriber's output buffer exceeds this (0: never)",
    )
    p.add_argument("--quick", action="store_true", help="CI size: shards 1,2, 8 pairs, 4 subscribers, 1 s")
    p.add_argument("--json", type=Path, help="also write every figure to this file")
    return p


def delta_payload(size: int) -> bytes:
    """``size`` bytes shaped like a delta frame (never containing a RESP header)."""
    head = b'{"type":"delta","pair":"BTC-USD","epoch":"1700000000000-abcdef","seq":1,"ts":1,"bids":['
    body = (head + b'["64000.01","0.5"],' * (size // 19 + 1))[: size - 2]
    return body + b"]}"


def _ask(pipe: Connection, request: str | None, what: str) -> dict:
    if request is not None:
        pipe.send(request)
    if not pipe.poll(ANSWER_S):
        raise RuntimeError(f"{what} did not answer {request or 'ready'!r} within {ANSWER_S:.0f}s")
    reply = pipe.recv()
    if reply.get("error"):
        raise RuntimeError(f"{what}: {reply['error']}")
    return reply


def _end(proc: mp.process.BaseProcess) -> None:
    proc.join(10)
    if proc.is_alive():
        proc.kill()
        proc.join()


def _targets(cluster: EmbeddedRedisCluster, layout: RedisLayout, pairs: list[str]) -> list[Target]:
    """Per primary that owns a channel: its channels grouped by partition (one slot each)."""
    by_partition: dict[int, list[str]] = {}
    for pair in pairs:
        by_partition.setdefault(layout.partition(pair), []).append(layout.delta_channel(pair))
    primaries = sorted((n for n in cluster.nodes if n.role == "primary"), key=lambda n: n.slots)
    owned: dict[int, list[list[str]]] = {}
    for partition, channels in sorted(by_partition.items()):
        owner = cluster.primary_for_key(layout.tag(partition))
        owned.setdefault(owner.port, []).append(channels)
    return [(i, LOOPBACK, n.port, owned.get(n.port, [])) for i, n in enumerate(primaries)]


def run_shards(k: int, args: argparse.Namespace, pairs: list[str], payload: bytes) -> ShardRun:
    ctx = mp.get_context("spawn")
    with ExitStack() as stack:
        cluster = stack.enter_context(EmbeddedRedisCluster(primaries=k, replicas=0))
        layout = RedisLayout(f"scale-{uuid.uuid4().hex[:6]}", args.partitions)
        all_targets = _targets(cluster, layout, pairs)
        targets = [t for t in all_targets if t[3]]  # a primary without channels gets no traffic
        valkey = {t[0]: cluster.node(t[2]).pid or 0 for t in all_targets}
        run = ShardRun(k, args.subscribers, args.seconds)
        run.channels = [sum(len(c) for c in t[3]) for t in all_targets]
        run.partitions = [len(t[3]) for t in all_targets]
        subs, sub_pipes = [], []
        share = [
            args.subscribers // args.sub_processes + (i < args.subscribers % args.sub_processes)
            for i in range(args.sub_processes)
        ]
        for count in (c for c in share if c):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=subscriber_main, args=(child, targets, count, k), daemon=True)
            proc.start()
            stack.callback(_end, proc)
            subs.append(proc)
            sub_pipes.append(parent)
        run.connections = sum(_ask(p, None, "a subscriber process")["connections"] for p in sub_pipes)
        pubs, pub_pipes = [], []
        for _ in range(args.pub_processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=publisher_main,
                daemon=True,
                args=(child, targets, k, payload, args.batch, args.depth, args.backlog_kib * 1024, 20.0),
            )
            proc.start()
            stack.callback(_end, proc)
            pubs.append(proc)
            pub_pipes.append(parent)
        for pipe in pub_pipes:
            _ask(pipe, None, "a publisher process")
        for pipe in pub_pipes:
            stack.callback(_quiet_stop, pipe)
            _ask(pipe, "start", "a publisher process")
        time.sleep(args.warmup)

        def mark() -> tuple[list[dict], list[dict], dict[str, object]]:
            cpu = {
                "valkey": [cpu_seconds(pid) if pid else 0.0 for pid in valkey.values()],
                "pub": [cpu_seconds(p.pid or 0) for p in pubs],
                "sub": [cpu_seconds(p.pid or 0) for p in subs],
                "self": cpu_seconds(os.getpid()),
                "busy": machine_busy_seconds(),
                "at": time.monotonic(),
            }
            pub_marks = [_ask(p, "mark", "a publisher") for p in pub_pipes]
            return pub_marks, [_ask(p, "mark", "a subscriber") for p in sub_pipes], cpu

        run.loadavg_before = os.getloadavg()
        before = mark()
        time.sleep(args.seconds)
        after = mark()
        run.loadavg_after = os.getloadavg()
        run.measure(before, after)
        finals = [_ask(p, "stop", "a publisher") for p in pub_pipes]
        run.totals(finals, _drain(sub_pipes, finals))
        for pipe in sub_pipes:
            _ask(pipe, "stop", "a subscriber")
    return run


def _quiet_stop(pipe: Connection) -> None:
    """Tell a publisher to end if it still runs (after an error); never raises."""
    with suppress(OSError, ValueError):
        pipe.send("abort")


def _drain(pipes: list[Connection], finals: list[dict], timeout: float = 10.0) -> list[dict]:
    """Subscriber counts once everything the server delivered has arrived (or stopped arriving)."""
    expected = sum(sum(f["receivers"]) for f in finals)
    deadline = time.monotonic() + timeout
    last, still_since = -1, time.monotonic()
    while True:
        marks = [_ask(p, "mark", "a subscriber") for p in pipes]
        got = sum(sum(m["messages"]) for m in marks)
        now = time.monotonic()
        if got != last:
            last, still_since = got, now
        if got >= expected or now >= deadline or now - still_since > 1.0:
            return marks
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.shards, args.pairs, args.subscribers, args.seconds, args.warmup = "1,2", 8, 4, 1.0, 0.3
    shards = [int(s) for s in args.shards.split(",") if s.strip()]
    if not shards or min(shards) < 1 or args.pairs < 1 or args.subscribers < 1 or args.sub_processes < 1:
        print("bookcast bench scale: shards, pairs, subscribers and processes must be >= 1", file=sys.stderr)
        return 2
    pairs = default_pairs(args.pairs)
    payload = delta_payload(args.message_bytes)
    host = machine()
    cost = counting_cost()
    print(
        f"bookcast bench scale: shards {','.join(map(str, shards))}; {len(pairs)} pairs over "
        f"{args.partitions} partitions; {args.subscribers} subscribers in {args.sub_processes} processes; "
        f"{args.pub_processes} publisher process(es), {args.batch} x {len(payload)} B per call; "
        f"{args.seconds:g}s each; {host['cores']} cores, load {host['loadavg_text']}",
        flush=True,
    )
    print(
        f"subscriber counting: bytes.count {cost['count_us']:.2f} µs/msg vs RespParser "
        f"{cost['resp_parser_us']:.2f} µs/msg ({cost['resp_parser_us'] / cost['count_us']:.0f}x): "
        "this run counts smessage headers",
        flush=True,
    )
    runs: list[ShardRun] = []
    for k in shards:
        started = time.monotonic()
        run = run_shards(k, args, pairs, payload)
        runs.append(run)
        print(
            f"  k={k}: {run.published_per_s:>11,.0f} published/s, {run.delivered_per_s:>12,.0f} delivered/s, "
            f"valkey {sum(run.valkey_cores):.2f} cores, subscribers {sum(run.sub_cores):.2f}, "
            f"publisher {sum(run.pub_cores):.2f}, other {run.other_cores:.2f}, "
            f"lost {run.lost} ({time.monotonic() - started:.0f}s)",
            flush=True,
        )
        for problem in run.errors + ([f"{run.closed} subscriber connections closed"] if run.closed else []):
            print(f"    problem: {problem}", flush=True)
    print()
    print(table(runs))
    lines = verdict(runs, host["cores"])
    print()
    for line in lines:
        print(line)
    host["loadavg_end"] = os.getloadavg()
    if args.json:
        settings = {**vars(args), "json": str(args.json), "payload_bytes": len(payload)}
        report = {
            "machine": host,
            "settings": settings,
            "counting_us_per_message": cost,
            "runs": [r.as_dict(runs[0]) for r in runs],
            "verdict": lines,
        }
        args.json.write_text(json.dumps(report, indent=2))
        print(f"\nwrote {args.json}")
    return 0
