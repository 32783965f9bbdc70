"""The load generator's per-connection rules: seq continuity for every pair, checksums on a sample.

Sans-I/O like :mod:`clients.book_set`, but lean: a connection under load only tracks each
pair's ``(epoch, seq)`` and applies the three-way rule of :func:`mdcore.sequencing.classify`
(older → count as stale, next → accept, jump or new epoch → count a gap or an epoch change
and ask for a ``resync``); its ops are written by :func:`mdcore.codec.encode_client_op`.
A sampled connection also keeps full books in :class:`mdcore.local_book.LocalBook` and
verifies every checksum, which costs far more per message. Frames may hold one message or
a JSON array of them.

One checker lives as long as its connection *slot*, across reconnects, so a reconnect can
ask for what it missed with ``since`` (protocol.md, section 8) as a real client does, and
the time from a disconnect until every pair is synced again can be measured: after a
gateway restart that is what each client waits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson

from clients.load.stats import ConnTimes, GroupTally, Latencies, LoadCounters
from mdcore.codec import encode_client_op, message_from_object
from mdcore.errors import BookcastError
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, Resync, Snapshot, StreamPosition, Subscribe
from mdcore.sequencing import Verdict, classify

log = logging.getLogger(__name__)

RESYNC_RETRY_NS = 5_000_000_000  # ask again if a snapshot has not come after this long
SUBSCRIBE_BUDGET = 3_000  # bytes per subscribe op: under the gateway's 4 KiB client frame limit
_loads = orjson.loads
_NEXT, _STALE = Verdict.NEXT, Verdict.STALE


class PairTrack:
    """One pair on one connection: its stream position and, when sampled, its book.

    ``since`` is set while the pair waits for its ``since`` subscribe to be answered: its
    position is kept, and a recovered answer or the next delta of that epoch continues it.
    """

    __slots__ = ("asked_ns", "book", "epoch", "pair", "seq", "since", "synced")

    def __init__(self, pair: str, verify: bool) -> None:
        self.pair = pair
        self.epoch: str | None = None
        self.seq = 0
        self.synced = False
        self.since = False
        self.asked_ns = 0
        self.book = LocalBook(pair) if verify else None


def subscribe_chunks(
    pairs: list[str], positions: dict[str, dict[str, object]], budget: int = SUBSCRIBE_BUDGET
) -> list[tuple[list[str], dict[str, dict[str, object]]]]:
    """Pairs (and their ``since`` positions) split into requests of at most about ``budget`` bytes.

    Why: a client following hundreds of pairs, positions included, would otherwise send one
    frame over the gateway's client frame limit (4 KiB) and be closed with 1009.
    """
    chunks: list[tuple[list[str], dict[str, dict[str, object]]]] = []
    names: list[str] = []
    since: dict[str, dict[str, object]] = {}
    size = 64  # the op's own keys and id
    for pair in pairs:
        cost = len(pair) + 3
        position = positions.get(pair)
        if position is not None:
            cost += len(pair) + 5 + len(orjson.dumps(position))
        if names and size + cost > budget:
            chunks.append((names, since))
            names, since, size = [], {}, 64
        names.append(pair)
        if position is not None:
            since[pair] = position
        size += cost
    if names:
        chunks.append((names, since))
    return chunks


class StreamChecker:
    """Checks every message of one connection slot; collects the ops (resyncs) it must send."""

    def __init__(
        self,
        pairs: Iterable[str],
        counters: LoadCounters,
        latencies: Latencies,
        verify: bool = False,
        times: ConnTimes | None = None,
        tally: GroupTally | None = None,
    ) -> None:
        self.verify = verify
        self.counters = counters
        self.latencies = latencies
        self.times = times if times is not None else ConnTimes()
        self.tally = tally if tally is not None else GroupTally()
        self.tracks = {pair: PairTrack(pair, verify) for pair in pairs}
        self.outbox: list[bytes] = []
        self.waiting = len(self.tracks)  # pairs not synced: 0 = the connection is synced
        self.started_ns: int | None = None  # the first attempt to connect (set by the worker)
        self.lost_ns: int | None = None  # set from a disconnect until every pair is synced again
        self.synced_ns = 0  # when the connection last became fully synced (0: never)
        self.subscribed_ns: int | None = None  # set from a (re)connection's subscribe until it is synced
        self._next_id = 1

    @property
    def synced(self) -> bool:
        return self.waiting == 0

    def subscribe_ops(self, now_ns: int) -> list[bytes]:
        """The subscribe requests of a new connection.

        Pairs that were synced when the last connection dropped carry their position
        (``since``); every pair waits until it is recovered or gets its snapshot.
        """
        self.outbox.clear()  # resyncs meant for the connection that dropped: the subscribe covers them
        self.subscribed_ns = now_ns
        positions: dict[str, dict[str, object]] = {}
        for track in self.tracks.values():
            if track.synced or track.since:
                track.since = True
                positions[track.pair] = {"epoch": track.epoch, "seq": track.seq}
            if track.synced:
                track.synced = False
                self.waiting += 1
            track.asked_ns = now_ns
        ops = []
        for names, since in subscribe_chunks(list(self.tracks), positions):
            if since:
                self.counters.since_subscribes += 1
            at = {pair: StreamPosition(**pos) for pair, pos in since.items()}  # type: ignore[arg-type]
            ops.append(encode_client_op(Subscribe(tuple(names), self._next_id, at)).encode())
            self._next_id += 1
        return ops

    def subscribe_op(self, now_ns: int) -> bytes:
        """The one subscribe request of a connection whose pairs fit in one (tests, small clients)."""
        ops = self.subscribe_ops(now_ns)
        if len(ops) != 1:
            raise ValueError(f"{len(self.tracks)} pairs need {len(ops)} subscribe requests")
        return ops[0]

    def connection_lost(self, now_ns: int) -> None:
        """The connection dropped: every pair waits again; the clock of the resync starts.

        Only for a connection that was synced before: one that never was is still on its first sync.
        """
        if self.lost_ns is None and self.synced_ns:
            self.lost_ns = now_ns
        for track in self.tracks.values():
            if track.synced:
                track.synced = False
                track.since = True  # ask to continue from here
                self.waiting += 1

    def on_frame(self, data: bytes, received_ns: int) -> None:
        """One text frame (an object or an array of objects); never raises."""
        counters = self.counters
        counters.frames += 1
        counters.bytes += len(data)
        self.tally.frames += 1
        try:
            obj = _loads(data)
        except orjson.JSONDecodeError:
            counters.bad_frames += 1
            return
        if type(obj) is list:
            for item in obj:
                self._message(item, received_ns)
        else:
            self._message(obj, received_ns)

    def take_ops(self) -> list[bytes]:
        ops, self.outbox = self.outbox, []
        return ops

    def _message(self, obj: object, received_ns: int) -> None:
        counters = self.counters
        counters.messages += 1
        try:
            kind = obj.get("type")  # type: ignore[attr-defined]
            if kind == "delta":
                self._delta(obj, received_ns)  # type: ignore[arg-type]
            elif kind == "snapshot":
                self._snapshot(obj, received_ns)  # type: ignore[arg-type]
            elif kind == "subscribed":
                counters.acks += 1
                self._subscribed(obj, received_ns)  # type: ignore[arg-type]
            elif kind == "error":
                counters.errors += 1
                if counters.errors <= 5:
                    log.warning("gateway error: %s", obj)
        except (AttributeError, KeyError, TypeError, ValueError):
            counters.bad_frames += 1

    def _subscribed(self, obj: dict, received_ns: int) -> None:
        recovered = obj.get("recovered")
        if recovered is None:
            return
        if recovered is not True:
            self.counters.recovery_misses += 1  # the pairs not recovered get snapshots
            return
        self.counters.recovered_answers += 1
        for pair in obj.get("pairs", ()):
            track = self.tracks.get(pair)
            if track is not None and track.since and not track.synced:
                self._now_synced(track, received_ns)

    def _delta(self, obj: dict, received_ns: int) -> None:
        track = self.tracks.get(obj["pair"])
        if track is None:
            return  # not ours (a gateway bug, but not this tool's business to count twice)
        counters = self.counters
        epoch, seq = obj["epoch"], obj["seq"]
        verdict = classify(track.epoch, track.seq, epoch, seq)
        if not track.synced:
            if track.since and verdict is _NEXT:
                self._now_synced(track, received_ns)  # recovered: the replay continues the book
            else:
                counters.ignored += 1
                if received_ns - track.asked_ns >= RESYNC_RETRY_NS:
                    self._resync(track, received_ns)
                return
        if verdict is not _NEXT:
            if verdict is _STALE:
                counters.stale += 1
                return
            if epoch != track.epoch:  # a GAP from a new epoch: counted apart from jumps
                counters.epoch_changes += 1
            else:
                counters.gaps += 1
            self._resync(track, received_ns)
            return
        track.seq = seq
        counters.deltas += 1
        self.tally.deltas += 1
        if not self.latencies.record_ns(received_ns - obj["xts"], received_ns - obj["ts"]):
            counters.negative_latency += 1
        if track.book is not None:
            self._verify_delta(track, obj, received_ns)

    def _snapshot(self, obj: dict, received_ns: int) -> None:
        track = self.tracks.get(obj["pair"])
        if track is None:
            return
        self.counters.snapshots += 1
        if track.book is not None:
            message = message_from_object(obj)
            assert isinstance(message, Snapshot)
            try:
                track.book.load_snapshot(message)
            except BookcastError as exc:
                self._checksum_failed(track, exc, received_ns)
                return
            self.counters.verified += 1
        track.epoch, track.seq = obj["epoch"], obj["seq"]
        if not track.synced:
            self._now_synced(track, received_ns)

    def _now_synced(self, track: PairTrack, now_ns: int) -> None:
        track.synced = True
        track.since = False
        self.waiting -= 1
        if self.waiting:
            return
        if self.subscribed_ns is not None:
            ConnTimes.record(self.times.subscribed, now_ns - self.subscribed_ns)
            self.subscribed_ns = None
        if self.lost_ns is not None:
            ConnTimes.record(self.times.resync, now_ns - self.lost_ns)
            self.counters.resynced += 1
            self.lost_ns = None
        elif not self.synced_ns and self.started_ns is not None:
            ConnTimes.record(self.times.first_sync, now_ns - self.started_ns)
        self.synced_ns = now_ns

    def _verify_delta(self, track: PairTrack, obj: dict, received_ns: int) -> None:
        message = message_from_object(obj)
        assert isinstance(message, Delta) and track.book is not None
        try:
            track.book.apply_delta(message)
        except BookcastError as exc:
            self._checksum_failed(track, exc, received_ns)
            return
        self.counters.verified += 1

    def _checksum_failed(self, track: PairTrack, exc: Exception, received_ns: int) -> None:
        self.counters.checksum_failures += 1
        if self.counters.checksum_failures <= 5:
            log.warning("%s: %s", track.pair, exc)
        self._resync(track, received_ns)

    def _resync(self, track: PairTrack, now_ns: int) -> None:
        if track.synced:
            self.waiting += 1
        track.synced = False
        track.since = False  # a resync is answered with a snapshot
        track.asked_ns = now_ns
        self.counters.resyncs += 1
        self.outbox.append(encode_client_op(Resync(track.pair)).encode())
