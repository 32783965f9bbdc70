"""How every process sets up its log: one format, the level from ``BOOKCAST_LOG_LEVEL``.

Each command used to call :func:`logging.basicConfig` with its own copy of the format; the
copies drifted. A line reads ``<time> <tag> <LEVEL> <logger>: <message>``, where the tag
says which process wrote it (``md``, ``feed[2]``, ``gateway-1``) when several share a
terminal or a compose log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

LEVEL_ENV = "BOOKCAST_LOG_LEVEL"
DEFAULT_LEVEL = "INFO"


def log_format(tag: str = "", with_name: bool = True) -> str:
    """The format of every line: the tag (if any) after the time, the logger's name unless
    ``with_name`` is False (the load generator's lines, where it is always the same)."""
    head = f"%(asctime)s {tag} " if tag else "%(asctime)s "
    return head + ("%(levelname)s %(name)s: %(message)s" if with_name else "%(levelname)s: %(message)s")


def setup_logging(
    tag: str = "",
    level: str | int | None = None,
    *,
    with_name: bool = True,
    env: Mapping[str, str] = os.environ,
) -> None:
    """Configure the root logger once per process (a no-op if it already has a handler, as
    :func:`logging.basicConfig` is). ``level`` None: ``BOOKCAST_LOG_LEVEL``, else INFO."""
    if level is None:
        level = env.get(LEVEL_ENV, DEFAULT_LEVEL)
    if isinstance(level, str):
        level = level.upper()
    logging.basicConfig(level=level, format=log_format(tag, with_name))
