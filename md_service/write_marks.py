"""How many window writes Redis confirmed, per partition, kept outside Redis.

Every window write increments a per-partition counter in Redis (``writes:<p>`` in the md
hash, inside the same atomic script), and md_service keeps the value Redis returned in a
small local file. Redis' counter only ever grows, so on a later claim a counter in Redis
*below* this record means Redis lost writes it had confirmed (a lagging replica promoted, a
restart from an older RDB): the pairs restored from it sit at older seqs than clients may
already hold, so they must continue in a new epoch instead of republishing those seqs with
other content (see docs/md_service.md, "When Redis lost state").

The file holds one fixed-width record per partition (the Redis dataset's id, so a record
about another Redis is never compared, and the counter), written in place with one
``pwrite`` after each confirmed write: a few microseconds, no fsync. It survives a crash or
restart of md_service, not of the host's page cache. Records of one partition are written
only by its current owner, so several instances may share the directory.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

from mdruntime.log_throttle import LogThrottle

log = logging.getLogger(__name__)

DATASET_LEN = 16  # characters of the dataset id (md_service.claim_script makes 16 hex digits)
_COUNT_LEN = 20
RECORD = DATASET_LEN + _COUNT_LEN + 1  # id, counter, newline


def marks_path(directory: str | Path, prefix: str, topic: str) -> Path:
    """The file of one deployment's topic: readable name plus a hash of the exact names."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{prefix}.{topic}")[:100]
    digest = hashlib.sha256(f"{prefix}\0{topic}".encode()).hexdigest()[:8]
    return Path(directory) / f"{safe}.{digest}.marks"


class WriteMarks:
    """Per partition: the Redis write counter after this instance's last confirmed write."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._throttle = LogThrottle(log)

    def read(self, partition: int, dataset: str) -> int | None:
        """The recorded counter of ``partition`` in ``dataset``; None if none (or another dataset's)."""
        raw = os.pread(self._fd, RECORD, partition * RECORD)
        if len(raw) != RECORD or raw[-1:] != b"\n":
            return None
        text = raw[:-1].decode("ascii", "replace")
        if text[:DATASET_LEN] != dataset.ljust(DATASET_LEN)[:DATASET_LEN]:
            return None
        count = text[DATASET_LEN:]
        return int(count) if count.isdigit() else None

    def record(self, partition: int, dataset: str, count: int) -> None:
        """Keep ``count`` as what Redis confirmed for ``partition`` (called after every write).

        A failed write (a full disk) only weakens the detection: logged, never raised.
        """
        line = f"{dataset.ljust(DATASET_LEN)[:DATASET_LEN]}{count:0{_COUNT_LEN}d}\n".encode("ascii")
        try:
            os.pwrite(self._fd, line, partition * RECORD)
        except OSError as exc:
            self._throttle.error("record", "cannot update write marks in %s: %s", self.path, exc)

    def close(self) -> None:
        os.close(self._fd)


def open_marks(directory: str, prefix: str, topic: str) -> WriteMarks | None:
    """The marks of this deployment's topic in ``directory``; None ("" or unusable: detection off)."""
    if not directory:
        return None
    path = marks_path(directory, prefix, topic)
    try:
        return WriteMarks(path)
    except OSError as exc:
        log.error("cannot keep write marks in %s (%s): a Redis that lost confirmed writes will not be "
                  "noticed after a restart (BOOKCAST_MD_STATE_DIR)", path, exc)  # fmt: skip
        return None
