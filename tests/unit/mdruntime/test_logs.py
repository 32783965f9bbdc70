"""mdruntime.logs: the one log format every process writes, and its level."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pytest

from mdruntime.logs import log_format, setup_logging


@contextlib.contextmanager
def bare_root() -> Iterator[logging.Logger]:
    """The root logger without handlers (pytest's own put back afterwards), so basicConfig acts.

    (pytest adds its capture handlers around the test's call, after fixtures: hence a context
    manager inside the test.)"""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        yield root
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.parametrize(
    ("tag", "with_name", "expected"),
    [
        ("md", True, "%(asctime)s md %(levelname)s %(name)s: %(message)s"),
        ("gateway-2", True, "%(asctime)s gateway-2 %(levelname)s %(name)s: %(message)s"),
        ("feed[3]", True, "%(asctime)s feed[3] %(levelname)s %(name)s: %(message)s"),
        ("load", False, "%(asctime)s load %(levelname)s: %(message)s"),
        ("load[1]", False, "%(asctime)s load[1] %(levelname)s: %(message)s"),
        ("", True, "%(asctime)s %(levelname)s %(name)s: %(message)s"),
    ],
)
def test_format_of_each_process(tag, with_name, expected) -> None:
    assert log_format(tag, with_name) == expected


def test_setup_logging_installs_the_format_and_env_level() -> None:
    with bare_root() as root:
        setup_logging("md", env={"BOOKCAST_LOG_LEVEL": "debug"})
        (handler,) = root.handlers
        level = root.level
    assert handler.formatter is not None
    assert handler.formatter._fmt == "%(asctime)s md %(levelname)s %(name)s: %(message)s"
    assert level == logging.DEBUG
    record = logging.LogRecord("md_service", logging.WARNING, __file__, 1, "lost %d", (3,), None)
    assert handler.format(record).endswith(" md WARNING md_service: lost 3")


@pytest.mark.parametrize(
    ("level", "env", "expected"),
    [
        (None, {}, logging.INFO),
        ("warning", {"BOOKCAST_LOG_LEVEL": "DEBUG"}, logging.WARNING),
        (logging.ERROR, {"BOOKCAST_LOG_LEVEL": "DEBUG"}, logging.ERROR),
    ],
)
def test_level_defaults_to_info_and_an_explicit_one_wins(level, env, expected) -> None:
    with bare_root() as root:
        setup_logging("feed", level, env=env)
        found = root.level
    assert found == expected


def test_a_configured_root_is_left_alone() -> None:
    with bare_root() as root:
        setup_logging("md", env={})
        setup_logging("gateway", "DEBUG", env={})  # second call: basicConfig's no-op
        handlers, level = root.handlers[:], root.level
    (handler,) = handlers
    assert " md " in handler.formatter._fmt
    assert level == logging.INFO
