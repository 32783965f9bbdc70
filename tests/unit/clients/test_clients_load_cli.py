"""``bookcast load`` as a command: exit codes and messages.

A whole run against a real stack is tests/integration/test_load_stack.py.
"""

from __future__ import annotations

import pytest

from clients.load.cli import check_limits, main, pairs_label
from clients.load.config import build_parser, load_config
from clients.load.limits import FdLimit


def test_the_command_refuses_bad_settings_and_an_unreachable_pool(capsys):
    assert main(["--connections", "0"]) == 2
    assert "--connections" in capsys.readouterr().err
    assert main(["--url", "ws://127.0.0.1:9/ws", "--duration", "1"]) == 2  # nothing listens there
    assert "give --pool" in capsys.readouterr().err


def config(*argv):
    return load_config(build_parser().parse_args(list(argv)), {"BOOKCAST_URL": "ws://127.0.0.1:9/ws"})


def test_help_and_usage_errors_exit_without_a_run(capsys):
    assert main(["--help"]) == 0
    assert "--connections" in capsys.readouterr().out
    assert main(["--no-such-flag"]) == 2


@pytest.mark.parametrize(
    ("argv", "label"),
    [
        ((), "1"),
        (("--pairs", "3"), "3"),
        (("--pairs", "BTC-USD,ETH-USD"), "2"),
        (("--pairs", "1-5", "--zipf", "1.2"), "1-5 drawn (zipf 1.2)"),
        (("--pairs", "2", "--all-pairs", "4"), "2, +4 on every pair"),
    ],
)
def test_the_report_names_what_each_connection_follows(argv, label):
    assert pairs_label(config(*argv)) == label


def enough(needed):
    return FdLimit(needed=needed, soft_before=needed, soft=needed, hard=needed)


def test_too_many_connections_per_local_port_range_is_a_warning_not_a_stop(monkeypatch, capsys):
    monkeypatch.setattr("clients.load.cli.raise_fd_limit", enough)
    monkeypatch.setattr("clients.load.cli.ephemeral_ports", lambda: 1_000)
    assert check_limits(config("--connections", "1500"), 1)
    assert "1,500 connections from one local address" in capsys.readouterr().err
    # Two URLs times two source addresses are four routes of 375: under the range, no warning.
    cfg = config(
        "--connections", "1500", "--url", "ws://a:1/ws,ws://b:1/ws", "--source", "127.0.0.1,127.0.0.2"
    )
    assert check_limits(cfg, 1)
    assert capsys.readouterr().err == ""
