"""A synthetic md_service for the fan-out benchmark and the gateway tests.

It writes exactly what md_service writes, in md_service's Redis layout
(``mdcore.redis_layout``): per window and pair one real encoded delta (``mdcore.codec``,
coalesced with ``mdcore.coalesce``, checksummed with ``mdcore.checksum``) PUBLISHed on the
pair's channel and appended to its history stream, the state hash, a snapshot every few
seqs, and the pairs set — all in one atomic Lua step per window. It skips Kafka and
md_service's fencing, so a benchmark or a test can drive the gateway at any rate,
deterministically (seeded), and can make Pub/Sub lose a message on purpose.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Iterable, Sequence

from mdcore.book import ASK, BID, OrderBook
from mdcore.coalesce import WindowChanges
from mdcore.codec import encode_delta, encode_snapshot
from mdcore.instruments import instrument
from mdcore.messages import Delta, Snapshot
from mdcore.partitioning import DEFAULT_PARTITIONS
from mdcore.redis_layout import RedisLayout
from mdcore.wire_format import book_checksum
from mdruntime.redis_connect import redis_client, run_scripts

# One call per partition (its keys share a hash slot). KEYS: the partition's pairs set, then per
# pair: state, hist, snap. ARGV: maxlen, then per pair: pair, channel, epoch, seq, xseq, delta,
# snapshot ("" = none), publish ("1"/"0").
PUBLISH_LUA = """
local maxlen, pairs_key = ARGV[1], KEYS[1]
local n = (#ARGV - 1) / 8
for i = 0, n - 1 do
  local a = 2 + i * 8
  local state, hist, snapkey = KEYS[2 + i * 3], KEYS[3 + i * 3], KEYS[4 + i * 3]
  local pair, channel, epoch, seq = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  if tonumber(seq) == 1 then redis.call('DEL', hist) end
  redis.call('XADD', hist, 'MAXLEN', '~', maxlen, seq .. '-0', 'd', ARGV[a + 5])
  if ARGV[a + 6] ~= '' then
    redis.call('SET', snapkey, ARGV[a + 6])
    redis.call('HSET', state, 'epoch', epoch, 'seq', seq, 'xseq', ARGV[a + 4], 'snap_seq', seq)
  else
    redis.call('HSET', state, 'epoch', epoch, 'seq', seq, 'xseq', ARGV[a + 4])
  end
  redis.call('SADD', pairs_key, pair)
  if ARGV[a + 7] == '1' then redis.call('SPUBLISH', channel, ARGV[a + 5]) end
end
return n
"""

HALF_DEPTH = 40  # levels a side the synthetic book keeps around its mid price


class SyntheticPair:
    """One pair's book, open window and stream position, moved by a seeded random walk."""

    def __init__(self, pair: str, rng: random.Random, epoch: str) -> None:
        self.pair = pair
        self.inst = instrument(pair)
        self.rng = rng
        self.epoch = epoch
        self.seq = 0
        self.xseq = 0
        self.book = OrderBook()
        self.window = WindowChanges()
        self.mid = 1_000_000 + rng.randrange(1_000_000)  # price units
        for k in range(1, HALF_DEPTH + 1):
            self.book.set_level(BID, self.mid - k, rng.randrange(1, 10_000))
            self.book.set_level(ASK, self.mid + k, rng.randrange(1, 10_000))

    def event(self, xts: int) -> None:
        """One exchange event: a few levels near the top change (never crossing the book)."""
        rng = self.rng
        self.xseq += 1
        for _ in range(rng.randrange(1, 4)):
            offset = 1 + int(rng.expovariate(0.2)) % HALF_DEPTH
            if rng.random() < 0.5:
                side, price = BID, self.mid - offset
            else:
                side, price = ASK, self.mid + offset
            qty = 0 if rng.random() < 0.15 and offset > 3 else rng.randrange(1, 10_000)
            self.window.apply(self.book, side, price, qty)
        self.window.note_event(xts)

    def close(self, now_ns: int, snapshot_every: int) -> tuple[bytes, bytes | None] | None:
        """Close the window: the next delta's bytes (and a snapshot when due), or None if unchanged."""
        window, self.window = self.window, WindowChanges()
        bids, asks = window.net_levels(self.book)
        if not bids and not asks:
            return None
        self.seq += 1
        fp, fq = self.inst.format_price, self.inst.format_qty
        checksum = book_checksum(self.book, self.inst)
        delta = Delta(
            self.pair, self.epoch, self.seq, now_ns, window.first_xts or now_ns,
            [(fp(p), fq(q)) for p, q in bids], [(fp(p), fq(q)) for p, q in asks], checksum,
        )  # fmt: skip
        snapshot = None
        if self.seq == 1 or self.seq % snapshot_every == 0:
            snapshot = encode_snapshot(
                Snapshot(
                    self.pair,
                    self.epoch,
                    self.seq,
                    now_ns,
                    [(fp(p), fq(q)) for p, q in self.book.iter_side(BID)],
                    [(fp(p), fq(q)) for p, q in self.book.iter_side(ASK)],
                    checksum,
                )
            )
        return encode_delta(delta), snapshot

    def wire_book(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        fp, fq = self.inst.format_price, self.inst.format_qty
        return (
            [(fp(p), fq(q)) for p, q in self.book.iter_side(BID)],
            [(fp(p), fq(q)) for p, q in self.book.iter_side(ASK)],
        )


class SyntheticPublisher:
    """Windows for ``pairs`` into Redis under ``prefix``, as md_service would write them."""

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        pairs: Sequence[str],
        seed: int = 1,
        history: int = 600,
        snapshot_every: int = 10,
        partitions: int = DEFAULT_PARTITIONS,
        cluster: Sequence[str] = (),
    ) -> None:
        self.layout = RedisLayout(prefix, partitions)
        self.client = redis_client(redis_url, cluster, socket_timeout=5.0, socket_connect_timeout=5.0)
        self._script = self.client.register_script(PUBLISH_LUA)
        self.history = history
        self.snapshot_every = snapshot_every
        self.rng = random.Random(seed)
        self.pairs: dict[str, SyntheticPair] = {}
        epoch = f"{time.time_ns() // 1_000_000}-{secrets.token_hex(3)}"
        for pair in pairs:
            self.pairs[pair] = SyntheticPair(pair, random.Random(self.rng.random()), epoch)
        self.windows = 0
        self.deltas = 0

    def new_epoch(self) -> None:
        """Start every pair over in a new epoch (as md_service does when Redis lost its state)."""
        epoch = f"{time.time_ns() // 1_000_000}-{secrets.token_hex(3)}"
        for stream in self.pairs.values():
            stream.epoch, stream.seq = epoch, 0

    def window(
        self,
        events_per_pair: int = 3,
        pairs: Iterable[str] | None = None,
        silent: Iterable[str] = (),
        now_ns: int | None = None,
        spread_ns: int = 0,
    ) -> dict[str, int]:
        """Apply events, close one window, write it atomically; returns each written pair's seq.

        ``silent`` pairs are written (history, state) but not PUBLISHed: Pub/Sub "lost" them.
        Events get exchange times spread over the ``spread_ns`` before the close.
        """
        names = list(self.pairs if pairs is None else pairs)
        start = time.time_ns()
        rng = self.rng
        for pair in names:
            stream = self.pairs[pair]
            for _ in range(events_per_pair):  # events happened at any time during the window
                stream.event(start - int(rng.random() * spread_ns))
        now = now_ns if now_ns is not None else time.time_ns()
        layout = self.layout
        calls: dict[int, tuple[list[str], list[str | bytes | int]]] = {}
        written: dict[str, int] = {}
        quiet = set(silent)
        for pair in names:
            stream = self.pairs[pair]
            closed = stream.close(now, self.snapshot_every)
            if closed is None:
                continue
            delta, snapshot = closed
            p = layout.partition(pair)
            keys, argv = calls.setdefault(p, ([layout.pairs_key(p)], [self.history]))
            keys += [layout.state_key(pair), layout.history_key(pair), layout.snapshot_key(pair)]
            argv += [
                pair, layout.delta_channel(pair), stream.epoch, stream.seq, stream.xseq,
                delta, snapshot or b"", "0" if pair in quiet else "1",
            ]  # fmt: skip
            written[pair] = stream.seq
        if written:
            run_scripts(self.client, [(self._script, keys, argv) for keys, argv in calls.values()])
            self.windows += 1
            self.deltas += len(written)
        return written

    def close(self) -> None:
        self.client.close()


def publisher_main(pipe: object, redis_url: str, prefix: str, pairs: list[str], events: int) -> None:
    """A publisher process (``multiprocessing``): ("start", window_ms) … ("stop", None).

    Windows are paced on a fixed schedule; when it falls behind it starts the next window
    at once rather than bursting to catch up (as md_service does).
    """
    publisher = SyntheticPublisher(redis_url, prefix, pairs, seed=42)
    publisher.window()
    pipe.send({"ready": True})  # type: ignore[attr-defined]
    command, window_ms = pipe.recv()  # type: ignore[attr-defined]
    late = 0
    if command == "start":
        period = window_ms / 1000
        next_at = time.monotonic()
        while not pipe.poll(0):  # type: ignore[attr-defined]
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                late += 1
                next_at = time.monotonic()
            publisher.window(events_per_pair=events, spread_ns=int(period * 1e9))
        pipe.recv()  # type: ignore[attr-defined]
    pipe.send({"windows": publisher.windows, "deltas": publisher.deltas, "late": late})  # type: ignore[attr-defined]
    publisher.close()
