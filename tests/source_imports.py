"""Reading a Python source's imports with ``ast`` (nothing is imported or executed).

Shared by the rules on the source tree: the layering test (``tests/unit/test_layering.py``)
and the tests' own import rule (``tests/unit/test_test_imports.py``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


def module_name(path: Path, root: Path) -> tuple[str, bool]:
    """Dotted module name of a source file under ``root``, and whether it is a package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str | None:
    """``from <level dots><target> import ...`` inside ``module`` -> the absolute name (None if too high)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 >= len(package):
        return None
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imported_names(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str | None, str]]:
    """Every import in ``source`` as ``(line, absolute name or None, how it was written)``."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            written = f"from {'.' * node.level}{node.module or ''} import ..."
            if node.level == 0:
                yield node.lineno, node.module, written
                continue
            base = _resolve_relative(module, is_package, node.level, node.module)
            if base is None:
                yield node.lineno, None, written
            elif node.module is None:
                # ``from . import a, b`` imports submodules (or names) of the base package.
                for alias in node.names:
                    yield node.lineno, f"{base}.{alias.name}", written
            else:
                yield node.lineno, base, written
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if (
                name in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                yield node.lineno, first.value, f"{name}({first.value!r})"
