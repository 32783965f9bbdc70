"""The load generator's per-connection rules: seq continuity for every pair, checksums on a sample.

Sans-I/O like :mod:`clients.book_set`, but lean: a connection under load only tracks each
pair's ``(epoch, seq)`` and applies the three-way rule (older → count as stale, next →
accept, jump or new epoch → count a gap and ask for a ``resync``). A sampled connection also
keeps full books in :class:`mdcore.local_book.LocalBook` and verifies every checksum, which
costs far more per message. Frames may hold one message or a JSON array of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson

from clients.load.stats import Latencies, LoadCounters
from mdcore.codec import message_from_object
from mdcore.errors import BookcastError
from mdcore.local_book import LocalBook
from mdcore.messages import Delta, Snapshot

log = logging.getLogger(__name__)

RESYNC_RETRY_NS = 5_000_000_000  # ask again if a snapshot has not come after this long
_loads = orjson.loads


class PairTrack:
    """One pair on one connection: its stream position and, when sampled, its book."""

    __slots__ = ("asked_ns", "book", "epoch", "pair", "seq", "synced")

    def __init__(self, pair: str, verify: bool) -> None:
        self.pair = pair
        self.epoch: str | None = None
        self.seq = 0
        self.synced = False
        self.asked_ns = 0
        self.book = LocalBook(pair) if verify else None


class StreamChecker:
    """Checks every message of one connection; collects the ops (resyncs) it must send."""

    def __init__(
        self, pairs: Iterable[str], counters: LoadCounters, latencies: Latencies, verify: bool = False
    ) -> None:
        self.verify = verify
        self.counters = counters
        self.latencies = latencies
        self.tracks = {pair: PairTrack(pair, verify) for pair in pairs}
        self.outbox: list[bytes] = []

    def subscribe_op(self, now_ns: int) -> bytes:
        """The subscribe request of a new connection: every pair starts waiting for a snapshot."""
        for track in self.tracks.values():
            track.synced = False
            track.asked_ns = now_ns
        return orjson.dumps({"op": "subscribe", "pairs": list(self.tracks), "id": 1})

    def on_frame(self, data: bytes, received_ns: int) -> None:
        """One text frame (an object or an array of objects); never raises."""
        counters = self.counters
        counters.frames += 1
        counters.bytes += len(data)
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
            elif kind == "error":
                counters.errors += 1
                if counters.errors <= 5:
                    log.warning("gateway error: %s", obj)
        except (AttributeError, KeyError, TypeError, ValueError):
            counters.bad_frames += 1

    def _delta(self, obj: dict, received_ns: int) -> None:
        track = self.tracks.get(obj["pair"])
        if track is None:
            return  # not ours (a gateway bug, but not this tool's business to count twice)
        counters = self.counters
        if not track.synced:
            counters.ignored += 1
            if received_ns - track.asked_ns >= RESYNC_RETRY_NS:
                self._resync(track, received_ns)
            return
        seq = obj["seq"]
        if obj["epoch"] != track.epoch:
            counters.epoch_changes += 1
            self._resync(track, received_ns)
            return
        if seq != track.seq + 1:
            if seq <= track.seq:
                counters.stale += 1
            else:
                counters.gaps += 1
                self._resync(track, received_ns)
            return
        track.seq = seq
        counters.deltas += 1
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
        track.epoch, track.seq, track.synced = obj["epoch"], obj["seq"], True

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
        track.synced = False
        track.asked_ns = now_ns
        self.counters.resyncs += 1
        self.outbox.append(orjson.dumps({"op": "resync", "pair": track.pair}))
