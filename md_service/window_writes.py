"""Closing and writing windows: what md_service does with each window's outputs and Redis' answer.

Split from :mod:`md_service.service` so that the service keeps the loop and its state and
this module keeps one job: close the open windows of the partitions due, write them (one
fenced script per partition, :mod:`md_service.redis_store`), and act on the result — record
what Redis took, hold back the partitions of a cluster node that was down, re-claim a
partition whose owner Redis lost, continue a refused pair in a new epoch. Like
:class:`md_service.leases.Leases` it works on the service's state, which the service owns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

import redis

from md_service.ownership import new_token
from md_service.pair_stream import PairStream, WindowOutput, new_epoch
from md_service.window_script import PartitionWrite, SnapshotWrite, WindowResult
from mdcore.messages import StreamPosition

if TYPE_CHECKING:
    from md_service.service import MdService

log = logging.getLogger("md_service.service")  # the same logger as before the split: log lines unchanged
MAX_BACKOFF_S = 2.0  # Redis or the dead-letter topic retried with backoff up to this
OUTAGE_LOG_EVERY_S = 10.0  # an outage is logged at most this often


class WindowWrites:
    """The service's window writing (see the module docstring)."""

    def __init__(self, service: MdService) -> None:
        self.service = service

    def close_windows(self, check: bool, partitions: Collection[int] | None = None) -> list[WindowOutput]:
        """Close the open windows of every stream (or of those in ``partitions``)."""
        s = self.service
        now = s.clock_ns()
        every = s.cfg.snapshot_every
        streams = s.streams
        owned = s.ownership.partitions
        if partitions is None:
            partitions = list(owned)
        chosen: Iterable[PairStream] = [
            streams[pair]
            for p in partitions
            if p in owned and not owned[p].following
            for pair in owned[p].pairs
        ]
        outputs = []
        for stream in chosen:
            out = stream.close_window(now, every, check)
            if out is not None:
                outputs.append(out)
        return outputs

    def write(
        self, check: bool, deadline: float | None = None, partitions: Collection[int] | None = None
    ) -> bool:
        """Close the open windows (all, or those of ``partitions``) and write them atomically.

        Returns False if stopped (or past ``deadline``) before Redis took the write.
        """
        s = self.service
        started = time.perf_counter_ns()
        outputs = self.close_windows(check, partitions)
        built = time.perf_counter_ns()
        writes = s.ownership.writes_for(outputs, check, partitions)
        if not outputs and not writes:
            return True
        if s.dead_letters is not None and not self._flush_dead_letters(deadline):
            self._abort(outputs, maybe_landed=False)
            return False
        result = s._retry("writing a window", lambda: s.store.write_window(writes, outputs), deadline)
        if result is None:
            self._abort(outputs, maybe_landed=True)
            return False
        if result.failed:  # a cluster node down: its partitions wait, those on healthy nodes went on
            outputs, writes = self._hold_failed(result.failed, outputs, writes)
        latency = s.counters.latency
        latency.written(outputs, s.clock_ns())  # the clock that stamped the deltas' close (ts)
        latency.build.record((built - started) // 1000)
        self._write_snapshots(self._apply_result(writes, outputs, result))
        return True

    def _hold_failed(
        self, failed: set[int], outputs: list[WindowOutput], writes: list[PartitionWrite]
    ) -> tuple[list[WindowOutput], list[PartitionWrite]]:
        """Take back the outputs of partitions whose node could not be reached (their changes
        rejoin the open windows and go with the next one); the rest were written."""
        s = self.service
        self._abort([o for o in outputs if o.partition in failed], maybe_landed=True)
        s.counters.partition_writes_failed += len(failed)
        s.counters.redis_errors += 1
        now = time.monotonic()
        if now >= s._next_outage_log:
            s._next_outage_log = now + OUTAGE_LOG_EVERY_S
            log.warning("partitions %s not written: their Redis node is unreachable; retried every window, "
                        "the other partitions go on", sorted(failed))  # fmt: skip
        return (
            [o for o in outputs if o.partition not in failed],
            [w for w in writes if w.partition not in failed],
        )

    def _abort(self, outputs: list[WindowOutput], maybe_landed: bool) -> None:
        """Give up on a window write: its seqs are free again (a seq is used only once written)."""
        s = self.service
        streams = s.streams
        for out in outputs:
            stream = streams.get(out.pair)
            if stream is not None:
                stream.abort_close(maybe_landed)

    def _write_snapshots(self, written: list[PairStream]) -> None:
        """Periodic snapshots due after this window; best effort (a failed one is due again next time).

        Only of the streams this window just wrote: their books are exactly at the seq the
        snapshot is labelled with (:meth:`PairStream.due_snapshot` checks it), while another
        slot's streams are mid-window.
        """
        s = self.service
        now = s.clock_ns()
        partitions = s.ownership.partitions
        writes = []
        for stream in written:
            if stream.snap_due:
                snapshot = stream.due_snapshot(now)
                part = partitions.get(stream.partition)
                if snapshot is not None and part is not None:
                    writes.append(
                        SnapshotWrite(
                            stream.pair, stream.partition, part.token, stream.epoch, stream.seq, snapshot
                        )
                    )
        if not writes:
            return
        try:
            stored = s.store.write_snapshots(writes)
        except redis.RedisError as exc:
            s.counters.redis_errors += 1
            log.warning("snapshot write failed (%s); they are due again after the next window", exc)
            return
        streams = s.streams
        for w in writes:
            if w.pair in stored and w.pair in streams:
                streams[w.pair].snapshot_written(w.seq)
        s.counters.snapshots += len(stored)

    def _flush_dead_letters(self, deadline: float | None) -> bool:
        """Every dead letter confirmed before the offset past it is stored (at-least-once)."""
        s = self.service
        dlq = s.dead_letters
        assert dlq is not None
        delay = 0.05
        while not dlq.flush(1.0):
            if s.stop_event.wait(delay) or (deadline is not None and time.monotonic() > deadline):
                return False
            delay = min(delay * 2, MAX_BACKOFF_S)
        s.counters.dead_letter_failed = dlq.failed
        return True

    def _apply_result(
        self, writes: list[PartitionWrite], outputs: list[WindowOutput], result: WindowResult
    ) -> list[PairStream]:
        """Record what Redis took; returns the streams whose windows it wrote."""
        s = self.service
        counters, streams = s.counters, s.streams
        refused_partitions = set(result.lost)
        written = []
        for out in outputs:
            if out.partition in result.lost:
                continue
            stream = streams.get(out.pair)
            if out.pair in result.refused:
                held = result.refused[out.pair]
                if (
                    not out.delta
                    or held != (out.epoch, out.seq)
                    or (stream is not None and stream.unsure == held)
                ):
                    refused_partitions.add(out.partition)
                    continue
                # Redis holds exactly this write: an earlier attempt whose reply was lost landed
                # (our epochs are ours alone). It is written, not refused. Unless a write we
                # gave up on may have put other content there (``unsure``): then it is refused.
                del result.refused[out.pair]
            if stream is not None:
                stream.confirm(out)
                written.append(stream)
            if out.delta:
                counters.deltas += 1
                counters.published_bytes += len(out.delta)
            else:
                counters.state_writes += 1
            if out.snapshot is not None:
                counters.snapshots += 1
        counters.windows += 1
        if s.marks is not None:
            for p, count in result.writes.items():
                s.marks.record(p, s.datasets.get(p, ""), count)
        stored = s.ownership.accepted(writes, refused_partitions)
        own = s.ownership.partitions
        s.source.commit({p: off for p, off in stored.items() if own[p].assigned})
        for p, owner in result.lost.items():
            self.partition_lost(p, owner)
        for pair, position in result.refused.items():
            self.pair_refused(pair, position)
        return written

    def partition_lost(self, p: int, owner: str) -> None:
        s = self.service
        if owner == "":
            part = s.ownership.partitions.get(p)
            token = part.token if part is not None else new_token(s.cfg.instance)
            claim = s._retry("re-claiming a partition", lambda: s.store.claim(token, [p], force=False))
            if claim is not None and p in claim.offsets:
                s.datasets.update(claim.datasets)  # a new one if Redis lost everything
                log.error("partition %d: Redis lost its owner (and likely every stream): re-claimed it; "
                          "its pairs continue in new epochs", p)  # fmt: skip
                if part is not None:
                    part.written = None
                for stream in [s for s in s.streams.values() if s.partition == p]:
                    self.restart(stream, None)
                return
        part = s.ownership.partitions.get(p)
        if part is None or part.following:
            return
        s.counters.partitions_lost += 1
        if part.assigned or s.cfg.standby:
            s.ownership.mark_fenced(p)
            then = "following it (warm) in case it is given back"
        else:
            s.ownership.drop(p)
            s.source.unfetch([p])
            then = "forgetting it"
        log.error("partition %d: fenced, another instance (%s) writes it now; %s", p, owner or "unknown",
                  then)  # fmt: skip

    def pair_refused(self, pair: str, position: StreamPosition | None) -> None:
        s = self.service
        stream = s.streams.get(pair)
        if stream is None:
            return
        s.counters.pairs_refused += 1
        log.error("%s: Redis holds %s, not %s as written last (it lost writes); continuing in a new epoch",
                  pair, position or "nothing", stream.stored)  # fmt: skip
        self.restart(stream, position)

    def restart(self, stream: PairStream, replacing: StreamPosition | None) -> None:
        s = self.service
        stream.restart_epoch(new_epoch(s.clock_ns()), replacing)
        s.counters.epochs_started += 1

    # --- loop -----------------------------------------------------------------------
