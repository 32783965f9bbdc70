"""The command: exit codes and messages on bad input, and signals turned into a clean stop."""

import signal
import threading

import pytest

from feed_simulator.cli import main, stop_on_signals


def test_cli_exits_2_with_a_clear_message_on_bad_input(monkeypatch, capsys):
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "127.0.0.1:9")  # never contacted: the input fails first
    assert main(["--rate", "0"]) == 2
    assert "--rate=0.0 must be" in capsys.readouterr().err
    assert main(["--pairs", "BTC-USD,MOON-USD"]) == 2
    assert "unknown pair 'MOON-USD'" in capsys.readouterr().err
    assert main(["--rate", "lots"]) == 2  # argparse's own message
    assert "invalid float value" in capsys.readouterr().err


def test_cli_without_kafka_says_how_to_get_one(monkeypatch, capsys):
    monkeypatch.delenv("KAFKA_BOOTSTRAP", raising=False)
    assert main([]) == 2
    assert "bookcast up" in capsys.readouterr().err


def test_sigterm_and_ctrl_c_ask_for_a_clean_stop_and_a_second_one_aborts():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    for first, second in ((signal.SIGTERM, signal.SIGINT), (signal.SIGINT, signal.SIGTERM)):
        stop = threading.Event()
        with pytest.raises(KeyboardInterrupt), stop_on_signals(stop):
            signal.raise_signal(first)
            assert stop.is_set()
            signal.raise_signal(second)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
