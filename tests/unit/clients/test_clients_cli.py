"""``python -m clients COMMAND``: dispatch to a command, usage and exit codes.

Moved from test_clients_watch.py; each command's own options are its file's
(test_clients_watch.py, test_clients_load_cli.py).
"""

from __future__ import annotations

from clients import cli


def test_cli_dispatch(capsys) -> None:
    assert cli.main([]) == 2
    assert "watch" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    assert "watch" in capsys.readouterr().out
    assert cli.main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err
    assert cli.main(["watch", "--help"]) == 0
    assert "--frames" in capsys.readouterr().out
    assert cli.main(["watch"]) == 2  # PAIR is required
