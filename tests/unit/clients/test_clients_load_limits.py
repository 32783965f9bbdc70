"""Operating-system limits of ``bookcast load``: open files raised or explained, ephemeral ports read."""

from __future__ import annotations

import resource

from clients.load.cli import check_limits
from clients.load.config import LoadConfig
from clients.load.limits import FdLimit, ephemeral_ports, needed_per_process, raise_fd_limit


def test_the_soft_open_files_limit_is_raised_towards_what_is_needed():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(soft, 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        limit = raise_fd_limit(1000)
        assert limit.soft_before == lowered
        assert limit.soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= min(1000, hard)
        assert limit.enough
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert needed_per_process(10_000, 4) == 2_500 + 64


def test_a_hard_limit_too_low_is_explained_and_stops_the_command(monkeypatch, capsys):
    limit = FdLimit(needed=50_064, soft_before=1024, soft=4096, hard=4096)
    assert not limit.enough
    text = limit.explain(100_000, 2)
    assert "50,064" in text and "4,096" in text and "ulimit -Hn" in text and "LimitNOFILE" in text
    monkeypatch.setattr("clients.load.cli.raise_fd_limit", lambda needed: limit)
    assert not check_limits(LoadConfig(urls=("ws://a:1/ws",), connections=100_000), 2)
    assert "hard limit" in capsys.readouterr().err


def test_the_ephemeral_port_range_is_read(tmp_path):
    path = tmp_path / "range"
    path.write_text("32768\t60999\n")
    assert ephemeral_ports(path) == 28_232
    assert ephemeral_ports(tmp_path / "missing") is None


def test_enough_means_the_raised_soft_limit_covers_what_is_needed():
    assert FdLimit(needed=100, soft_before=50, soft=100, hard=200).enough
    assert not FdLimit(needed=101, soft_before=50, soft=100, hard=100).enough


def test_each_process_needs_its_share_of_sockets_plus_a_margin():
    assert needed_per_process(10, 3) == 4 + 64  # rounded up: no process is short of one
    assert needed_per_process(10, 0) == 10 + 64  # no processes is one process


def test_an_unlimited_hard_limit_is_named_so():
    limit = FdLimit(needed=10, soft_before=1, soft=1, hard=resource.RLIM_INFINITY)
    assert "at most unlimited" in limit.explain(5, 1)


def test_an_unreadable_port_range_is_unknown(tmp_path):
    path = tmp_path / "range"
    path.write_text("32768\n")  # one number: not a range
    assert ephemeral_ports(path) is None
