"""Typed errors of the core. Each carries the context a caller needs to act on it.

BookcastError
 ├── InvalidEventError        an exchange event that must be skipped (md_service counts it)
 │    ├── UnknownPairError    the pair is not in the instrument catalogue
 │    └── InvalidNumberError  a price/qty that is not a canonical decimal on its grid
 ├── ProtocolError            a client frame the gateway answers with an ``error`` message
 ├── DecodeError              server bytes that are not the message they should be (also a
 │                            ValueError): the reader counts them and goes on, never crashes
 └── IntegrityError           a stream position or checksum that forbids applying a message:
      ├── SequenceGapError    the caller must resync (fetch a fresh snapshot)
      └── ChecksumMismatchError  the local book diverged: the caller must resync
"""

from __future__ import annotations


class BookcastError(Exception):
    """Root of every error the core raises on purpose."""


class InvalidEventError(BookcastError, ValueError):
    """An exchange event is malformed; skip it, count it, keep the book as it was.

    ``kind`` is a short stable label of what was wrong (``not_json``, ``bad_side``, …), so a
    consumer can count rejects by cause without parsing messages.
    """

    kind = "invalid"

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class UnknownPairError(InvalidEventError):
    """The pair is not in the instrument catalogue."""

    kind = "unknown_pair"

    def __init__(self, pair: object) -> None:
        super().__init__(f"unknown pair {pair!r}")
        self.pair = pair


class InvalidNumberError(InvalidEventError):
    """A price or quantity is not a canonical non-negative decimal on its grid."""

    kind = "bad_number"


class ProtocolError(BookcastError):
    """A client request the gateway rejects; ``code`` is the wire error code."""

    def __init__(self, code: str, message: str, request_id: object = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


class DecodeError(BookcastError, ValueError):
    """Bytes from a server (md_service's deltas, a gateway's frames) that do not decode as expected."""


class IntegrityError(BookcastError):
    """A message cannot be applied to a local book without risking a wrong book."""

    def __init__(self, pair: str, message: str) -> None:
        super().__init__(f"{pair}: {message}")
        self.pair = pair


class SequenceGapError(IntegrityError):
    """The stream jumped (seq > last+1) or changed epoch: resync from a snapshot."""

    def __init__(self, pair: str, expected_epoch: str, expected_seq: int, epoch: str, seq: int) -> None:
        what = "epoch changed" if epoch != expected_epoch else "sequence gap"
        super().__init__(
            pair,
            f"{what}: expected {expected_epoch}/{expected_seq}, received {epoch}/{seq}",
        )
        self.expected_epoch = expected_epoch
        self.expected_seq = expected_seq
        self.epoch = epoch
        self.seq = seq


class ChecksumMismatchError(IntegrityError):
    """The book after a delta does not hash to the delta's checksum: resync."""

    def __init__(self, pair: str, seq: int, expected: int, computed: int) -> None:
        super().__init__(pair, f"checksum mismatch at seq {seq}: expected {expected}, computed {computed}")
        self.seq = seq
        self.expected = expected
        self.computed = computed
