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
