"""Recordings of a feed run: every message sent, with its time, for exact replays.

Format (version 1): UTF-8 text, one record per line, ``.gz`` files gzip-compressed.

- First line: ``#bookcast-feed-recording 1 <header JSON>``; the header holds the run's
  ``seed``, ``scenario``, ``pairs``, ``rate``, ``max_actions``, ``started_ns`` (wall clock at
  the start) and the fault rates.
- Then one line per message, in the order sent: ``<offset_ns>\\t<key>\\t<what>\\t<value>``
  where ``offset_ns`` is the send time after the start (monotonic, integer ns), ``key`` the
  Kafka key (the pair), ``what`` the number of level changes of a real event, or the kind
  of an injected fault (``duplicate``, ``redelivery``, ``malformed``), and ``value`` the exact
  message bytes (an event's JSON never holds a tab or a newline).
- Last line: ``#end <trailer JSON>`` with ``messages``, ``events``, ``changes`` and
  ``elapsed_ns``; a file without it was cut short (the replay says so and sends what is there).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

MAGIC = b"#bookcast-feed-recording"
VERSION = 1
END = b"#end "


class RecordingError(ValueError):
    """A file that is not a bookcast feed recording, or is damaged; the message says where."""


def _open(path: str | Path, mode: str) -> IO[bytes]:
    if str(path).endswith(".gz"):
        return gzip.open(path, mode + "b", compresslevel=1)  # type: ignore[return-value]
    return open(path, mode + "b", buffering=1 << 20)  # closed by the owner


class Recorder:
    """Appends every message sent to a recording; ``close()`` writes the trailer."""

    def __init__(self, path: str | Path, header: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self._out = _open(path, "w")
        self._out.write(MAGIC + b" %d " % VERSION + orjson.dumps(dict(header)) + b"\n")
        self.messages = 0
        self.events = 0
        self.changes = 0

    def event(self, offset_ns: int, key: bytes, changes: int, value: bytes) -> None:
        """A real event with ``changes`` level changes."""
        self._out.write(b"%d\t%b\t%d\t%b\n" % (offset_ns, key, changes, value))
        self.messages += 1
        self.events += 1
        self.changes += changes

    def injected(self, offset_ns: int, key: bytes, kind: str, value: bytes) -> None:
        """An injected fault message of ``kind``."""
        if b"\n" in value or b"\t" in key:
            raise RecordingError(f"a {kind} message with a newline cannot be recorded")
        self._out.write(b"%d\t%b\t%b\t%b\n" % (offset_ns, key, kind.encode(), value))
        self.messages += 1

    def close(self, elapsed_ns: int) -> None:
        trailer = {
            "messages": self.messages,
            "events": self.events,
            "changes": self.changes,
            "elapsed_ns": elapsed_ns,
        }
        self._out.write(END + orjson.dumps(trailer) + b"\n")
        self._out.close()


@dataclass(frozen=True, slots=True)
class Record:
    """One recorded message: ``changes`` > 0 for a real event, else ``kind`` names the fault."""

    offset_ns: int
    key: bytes
    changes: int
    kind: str | None
    value: bytes


def _parse_header(path: str | Path, first: bytes) -> dict[str, Any]:
    magic, _, rest = first.partition(b" ")
    version, _, header = rest.partition(b" ")
    if magic != MAGIC:
        raise RecordingError(f"{path}: not a bookcast feed recording (no {MAGIC.decode()} line)")
    if version != b"%d" % VERSION:
        raise RecordingError(f"{path}: recording version {version.decode()!r}, this feed reads {VERSION}")
    try:
        return orjson.loads(header)
    except orjson.JSONDecodeError:
        raise RecordingError(f"{path}: the header line is not JSON") from None


class RecordingReader:
    """Reads a recording lazily: :attr:`header` at once, then ``for record in reader``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._in: IO[bytes] = _open(path, "r")
            first = self._in.readline()
        except (OSError, EOFError) as exc:
            raise RecordingError(f"{path}: cannot read: {exc}") from None
        try:
            self.header: dict[str, Any] = _parse_header(path, first)
        except BaseException:
            self._in.close()
            raise
        self.trailer: dict[str, Any] | None = None  # set once the end line was read
        self.line = 1

    def __iter__(self) -> Iterator[Record]:
        for raw in self._lines():
            if not raw.endswith(b"\n"):
                return  # a last line cut in the middle: the file was cut short
            self.line += 1
            if raw.startswith(END):
                self.trailer = orjson.loads(raw[len(END) :])
                return
            try:
                offset, key, what, value = raw.rstrip(b"\n").split(b"\t", 3)
                if what.isdigit():
                    yield Record(int(offset), key, int(what), None, value)
                else:
                    yield Record(int(offset), key, 0, what.decode(), value)
            except ValueError:
                raise RecordingError(f"{self.path}:{self.line}: not a recorded message") from None

    def _lines(self) -> Iterator[bytes]:
        """The file's lines; a gzip file cut short ends early (no trailer) instead of raising."""
        try:
            yield from self._in
        except EOFError:
            return
        except OSError as exc:
            raise RecordingError(f"{self.path}:{self.line + 1}: cannot read: {exc}") from None

    def close(self) -> None:
        self._in.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
