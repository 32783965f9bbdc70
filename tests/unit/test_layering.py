"""The layering rules, enforced on the source with ``ast`` (nothing is imported or executed).

- ``mdcore`` is the pure core: the standard library (minus anything that does I/O or
  concurrency), ``orjson`` and ``sortedcontainers``; never a tier or ``bookcast``.
- A tier (``feed_simulator``, ``md_service``, ``gateway``, ``clients``) may import ``mdcore``,
  never another tier and never the ``bookcast`` umbrella above it.
- ``mdruntime`` is shared runtime code that may do I/O: tiers may import it, and it imports
  only ``mdcore`` (never a tier nor ``bookcast``).
- ``bookcast`` may import everything.
- ``gateway.core`` is the gateway's pure core (the way websockets keeps ``protocol.py`` apart
  from ``asyncio/``): the same rule as ``mdcore``, and it may import ``mdcore``; the rest of
  the gateway drives it.

Relative imports are resolved to absolute names first, so ``from ..gateway import hub``
cannot slip past, and ``importlib.import_module("...")`` / ``__import__("...")`` with a
literal name count as imports too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.source_imports import Violation, imported_names, module_name

ROOT = Path(__file__).resolve().parents[2]
CORE = "mdcore"
RUNTIME = "mdruntime"
UMBRELLA = "bookcast"
TIERS = frozenset({"feed_simulator", "md_service", "gateway", "clients"})
PACKAGES = (CORE, RUNTIME, *sorted(TIERS), UMBRELLA)
PROJECT = frozenset(PACKAGES)

CORE_THIRD_PARTY = frozenset({"orjson", "sortedcontainers"})
# Standard-library modules that would give the core sockets, event loops, threads or processes.
CORE_FORBIDDEN_STDLIB = frozenset(
    {
        "_thread",
        "asynchat",
        "asyncio",
        "asyncore",
        "concurrent",
        "ftplib",
        "http",
        "imaplib",
        "multiprocessing",
        "poplib",
        "select",
        "selectors",
        "signal",
        "smtplib",
        "socket",
        "socketserver",
        "ssl",
        "subprocess",
        "telnetlib",
        "threading",
        "urllib",
        "xmlrpc",
    }
)
PURE_PARTS = frozenset({"urllib.parse"})  # pure modules of a package the rule above forbids
STDLIB = frozenset(sys.stdlib_module_names)
PURE_CORES = ("gateway.core",)  # a tier's pure core: mdcore's rule, plus mdcore itself


def check_source(
    source: str, module: str, is_package: bool = False, path: str | None = None
) -> list[Violation]:
    """The layering violations of one module's source."""
    where = path or module
    owner = module.split(".")[0]
    found: list[Violation] = []
    for line, name, written in imported_names(source, module, is_package):
        if name is None:
            found.append(Violation(where, line, f"relative import beyond the top-level package: {written}"))
            continue
        top = name.split(".")[0]
        pure = next((c for c in PURE_CORES if module == c or module.startswith(f"{c}.")), None)
        if pure is not None:
            if top != CORE and name != pure and not name.startswith(f"{pure}."):
                found.extend(_impure(name, pure, where, line, written))
            continue
        if top == owner:
            continue
        if owner == CORE:
            found.extend(_impure(name, CORE, where, line, written))
        elif owner in TIERS and (top in TIERS or top == UMBRELLA):
            found.append(
                Violation(where, line, f"tier {owner!r} must not import {top!r} (only mdcore and mdruntime)")
            )
        elif owner == RUNTIME and (top in TIERS or top == UMBRELLA):
            found.append(Violation(where, line, f"mdruntime must not import {top!r} (only mdcore)"))
    return found


def _impure(name: str, who: str, where: str, line: int, written: str) -> list[Violation]:
    """What is wrong with a pure core (``who``) importing ``name`` (nothing: an empty list)."""
    top = name.split(".")[0]
    if top in PROJECT:
        return [Violation(where, line, f"{who} must not import the project package {top!r}")]
    if top in CORE_FORBIDDEN_STDLIB and not any(name == p or name.startswith(f"{p}.") for p in PURE_PARTS):
        return [Violation(where, line, f"{who} must stay free of I/O and concurrency: {written}")]
    if top not in STDLIB and top not in CORE_THIRD_PARTY:
        allowed = ", ".join(sorted(CORE_THIRD_PARTY))
        return [Violation(where, line, f"{who} may import only the stdlib, {allowed}; not {top!r}")]
    return []


def source_files(package: str, root: Path = ROOT) -> list[Path]:
    return sorted(p for p in (root / package).rglob("*.py") if "__pycache__" not in p.parts)


def check_tree(root: Path = ROOT) -> list[Violation]:
    found: list[Violation] = []
    for package in PACKAGES:
        for path in source_files(package, root):
            module, is_package = module_name(path, root)
            rel = str(path.relative_to(root))
            found.extend(check_source(path.read_text(encoding="utf-8"), module, is_package, rel))
    return found


# --- the rules hold for the project ------------------------------------------------


def test_project_respects_layering() -> None:
    violations = check_tree()
    assert not violations, "layering violations:\n" + "\n".join(map(str, violations))


def test_core_is_actually_scanned() -> None:
    # Guards against a vacuous pass (a moved root, a renamed package).
    files = source_files(CORE)
    assert ROOT / CORE / "book.py" in files
    assert ROOT / CORE / "codec.py" in files
    assert ROOT / "gateway" / "core" / "replica.py" in source_files("gateway")


# --- the checker catches what it should -------------------------------------------


@pytest.mark.parametrize(
    ("source", "module", "fragment"),
    [
        ("import asyncio\n", "mdcore.book", "free of I/O"),
        ("from socket import socket\n", "mdcore.codec", "free of I/O"),
        ("import concurrent.futures\n", "mdcore.x", "free of I/O"),
        ("import threading\n", "mdcore.x", "free of I/O"),
        ("import subprocess\n", "mdcore.x", "free of I/O"),
        ("import selectors\n", "mdcore.x", "free of I/O"),
        ("import ssl\n", "mdcore.x", "free of I/O"),
        ("import redis.asyncio\n", "mdcore.x", "only the stdlib"),
        ("from confluent_kafka import Producer\n", "mdcore.x", "only the stdlib"),
        ("import websockets\n", "mdcore.x", "only the stdlib"),
        ("import uvloop\n", "mdcore.x", "only the stdlib"),
        ("from gateway import hub\n", "mdcore.x", "project package 'gateway'"),
        ("import bookcast.cli\n", "mdcore.x", "project package 'bookcast'"),
        ("from gateway.hub import Hub\n", "clients.client", "tier 'clients' must not import 'gateway'"),
        ("import md_service\n", "gateway.hub", "must not import 'md_service'"),
        ("from bookcast import embedded\n", "feed_simulator.cli", "must not import 'bookcast'"),
        ("def f():\n    import clients.client\n", "md_service.x", "must not import 'clients'"),
        ("import importlib\nimportlib.import_module('gateway.hub')\n", "clients.x", "'gateway'"),
        ("__import__('asyncio')\n", "mdcore.x", "free of I/O"),
        ("from .. import gateway\n", "clients.x", "beyond the top-level"),
        ("from ... import x\n", "clients.sub.y", "beyond the top-level"),
        ("from gateway.hub import Hub\n", "mdruntime.x", "mdruntime must not import 'gateway'"),
        ("import bookcast.up\n", "mdruntime.x", "mdruntime must not import 'bookcast'"),
        ("import mdruntime.redis_connect\n", "mdcore.x", "project package 'mdruntime'"),
        ("import asyncio\n", "gateway.core.replica", "gateway.core must stay free of I/O"),
        ("from gateway.hub import Hub\n", "gateway.core.x", "gateway.core must not import the project"),
        ("import websockets\n", "gateway.core.wsframe", "gateway.core may import only the stdlib"),
        ("from urllib.request import urlopen\n", "gateway.core.limits", "free of I/O"),
        ("import mdruntime.logs\n", "gateway.core.x", "project package 'mdruntime'"),
    ],
)
def test_checker_catches_violation(source, module, fragment) -> None:
    violations = check_source(source, module, path=f"{module.replace('.', '/')}.py")
    assert violations, f"no violation found in {source!r}"
    assert fragment in str(violations[0])
    assert str(violations[0]).startswith(f"{module.replace('.', '/')}.py:")


def test_checker_reports_the_line() -> None:
    source = '"""doc."""\n\nimport json\n\nimport websockets\n'
    (violation,) = check_source(source, "mdcore.codec", path="mdcore/codec.py")
    assert str(violation).startswith("mdcore/codec.py:5: ")


@pytest.mark.parametrize(
    ("source", "module", "is_package"),
    [
        ("from __future__ import annotations\nimport zlib, re\nimport orjson\n", "mdcore.x", False),
        ("from sortedcontainers import SortedDict\n", "mdcore.book", False),
        ("from . import book\nfrom .book import OrderBook\n", "mdcore.x", False),
        ("from .codec import encode_delta\n", "mdcore", True),
        ("import mdcore.book\nimport asyncio, websockets, redis\n", "gateway.hub", False),
        ("from mdruntime.redis_connect import redis_client\n", "md_service.x", False),
        ("import redis\nfrom mdcore.settings import cluster_seeds\n", "mdruntime.x", False),
        ("from .config import Config\nfrom . import hub\n", "gateway.cli", False),
        ("import gateway, md_service, clients, feed_simulator, mdcore\n", "bookcast.cli", False),
        ("from ..config import Config\n", "gateway.sub.mod", False),
    ],
)
def test_checker_accepts_allowed_imports(source, module, is_package) -> None:
    assert check_source(source, module, is_package) == []


def test_relative_imports_resolve_to_their_package() -> None:
    names = [name for _, name, _ in imported_names("from ..hub import Hub\n", "gateway.sub.mod", False)]
    assert names == ["gateway.hub"]
    names = [name for _, name, _ in imported_names("from . import book\n", "mdcore", True)]
    assert names == ["mdcore.book"]


def test_check_tree_finds_a_planted_violation(tmp_path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "clients" / "sub").mkdir()
    (tmp_path / "clients" / "sub" / "leak.py").write_text("import os\nfrom ...gateway import hub\n")
    (tmp_path / "mdcore" / "io.py").write_text("import json\nimport socket\n")
    found = sorted(map(str, check_tree(tmp_path)))
    assert found == [
        "clients/sub/leak.py:2: relative import beyond the top-level package: from ...gateway import ...",
        "mdcore/io.py:2: mdcore must stay free of I/O and concurrency: import socket",
    ]
