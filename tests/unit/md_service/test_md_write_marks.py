"""Write marks: what Redis confirmed per partition, kept in a local file across restarts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from md_service.write_marks import RECORD, WriteMarks, marks_path, open_marks

DATASET = "0123456789abcdef"


def test_a_record_survives_a_restart_and_is_kept_per_partition(tmp_path) -> None:
    path = marks_path(tmp_path, "bookcast", "bookcast.deltas")
    marks = WriteMarks(path)
    marks.record(3, DATASET, 41)
    marks.record(0, DATASET, 7)
    marks.record(3, DATASET, 42)  # every write overwrites the partition's record in place
    marks.close()
    again = WriteMarks(path)  # md_service restarted
    assert (again.read(0, DATASET), again.read(3, DATASET)) == (7, 42)
    assert again.read(1, DATASET) is None and again.read(9, DATASET) is None  # never written
    assert path.stat().st_size == 4 * RECORD


def test_a_record_of_another_redis_dataset_is_never_compared(tmp_path) -> None:
    marks = WriteMarks(tmp_path / "m")
    marks.record(0, DATASET, 500)
    assert marks.read(0, "fedcba9876543210") is None  # a fresh Redis: its counters start again


def test_a_torn_or_foreign_record_reads_as_none(tmp_path) -> None:
    path = tmp_path / "m"
    path.write_bytes(b"garbage\n")
    assert WriteMarks(path).read(0, DATASET) is None
    path.write_bytes(DATASET.encode() + b"x" * (RECORD - len(DATASET) - 1) + b"\n")
    assert WriteMarks(path).read(0, DATASET) is None


def test_each_prefix_and_topic_has_its_own_file(tmp_path) -> None:
    names = {marks_path(tmp_path, p, t).name for p, t in [("a", "t"), ("a:x", "t"), ("a_x", "t"), ("a", "u")]}
    assert len(names) == 4


def test_no_directory_means_no_marks_and_an_unusable_one_is_reported(tmp_path, caplog) -> None:
    assert open_marks("", "bookcast", "t") is None
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.ERROR):
        assert open_marks(str(blocker / "md"), "bookcast", "t") is None
    assert "will not be noticed" in caplog.text


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_failed_record_is_logged_not_raised(caplog) -> None:
    marks = WriteMarks(Path("/dev/full"))  # every write fails with ENOSPC, as on a full disk
    with caplog.at_level(logging.ERROR):
        marks.record(0, DATASET, 1)
        marks.record(0, DATASET, 2)
    assert caplog.text.count("cannot update write marks") == 1  # and throttled
