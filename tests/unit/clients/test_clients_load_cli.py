"""``bookcast load`` as a command: exit codes and messages.

A whole run against a real stack is tests/integration/test_load_stack.py.
"""

from __future__ import annotations

from clients.load.cli import main


def test_the_command_refuses_bad_settings_and_an_unreachable_pool(capsys):
    assert main(["--connections", "0"]) == 2
    assert "--connections" in capsys.readouterr().err
    assert main(["--url", "ws://127.0.0.1:9/ws", "--duration", "1"]) == 2  # nothing listens there
    assert "give --pool" in capsys.readouterr().err
