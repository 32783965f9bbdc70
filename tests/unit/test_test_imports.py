"""The tests import their helpers by full name, never through ``sys.path`` order.

``tests`` is a package tree (an ``__init__.py`` in every directory holding Python files), so
pytest imports each test module by its full name (``tests.unit.gateway.test_gateway_hub``)
with only the repository's root on ``sys.path``. A helper is then imported the same way
(``from tests.integration.stack_helpers import unique``). A bare ``from stack_helpers import``
works only while some test's own directory happens to be on ``sys.path``, and a
``sys.path.insert`` makes the outcome depend on which test ran first: both are refused here,
checked with ``ast`` on the source (nothing is imported or executed).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.source_imports import Violation, imported_names, module_name

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
SYS_PATH_EDITS = frozenset({"insert", "append", "extend"})


def python_files(tests: Path = TESTS) -> list[Path]:
    return sorted(p for p in tests.rglob("*.py") if "__pycache__" not in p.parts)


def project_packages(root: Path = ROOT) -> frozenset[str]:
    """The top-level packages at the repository's root (``gateway``, ``mdcore``, ``tests``, ...)."""
    return frozenset(p.name for p in root.iterdir() if (p / "__init__.py").is_file())


def local_names(tests: Path = TESTS, root: Path = ROOT) -> frozenset[str]:
    """Names that only ``sys.path`` order would make importable: every module and package in tests/.

    The project's own packages are left out: ``tests/unit/gateway`` mirrors ``gateway``, and
    ``import gateway`` means the real one.
    """
    names = {p.stem for p in python_files(tests) if p.stem != "__init__"}
    names |= {p.parent.name for p in tests.rglob("__init__.py") if p.parent != tests}
    return frozenset(names - project_packages(root))


def _is_sys_path(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )


def check_source(
    source: str, path: str, local: frozenset[str], module: str = "tests.x", is_package: bool = False
) -> list[Violation]:
    """What in one test file's source depends on ``sys.path`` order."""
    tree = ast.parse(source)
    found: list[Violation] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SYS_PATH_EDITS
            and _is_sys_path(node.func.value)
        ):
            found.append(Violation(path, node.lineno, f"sys.path.{node.func.attr}(...): import by full name"))
        elif isinstance(node, ast.AugAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AugAssign) else node.targets
            for target in targets:
                if _is_sys_path(target) or (isinstance(target, ast.Subscript) and _is_sys_path(target.value)):
                    found.append(Violation(path, node.lineno, "sys.path is changed: import by full name"))
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            written = f"from {'.' * node.level}{node.module or ''} import ..."
            found.append(Violation(path, node.lineno, f"relative import {written}: import by full name"))
    for line, name, written in imported_names(source, module, is_package):
        if name is not None and not written.startswith("from .") and name.split(".")[0] in local:
            found.append(
                Violation(path, line, f"{written} imports a module of tests/ by its bare name: use tests.…")
            )
    return sorted(found, key=lambda problem: problem.line)


def check_tests(tests: Path = TESTS, root: Path = ROOT) -> list[Violation]:
    local = local_names(tests, root)
    found: list[Violation] = []
    for path in python_files(tests):
        module, is_package = module_name(path, root)
        source = path.read_text(encoding="utf-8")
        found.extend(check_source(source, str(path.relative_to(root)), local, module, is_package))
    return found


def missing_packages(tests: Path = TESTS) -> list[str]:
    """Directories under tests/ that hold Python files but no ``__init__.py``."""
    dirs = {p.parent for p in python_files(tests)}
    return sorted(str(d.relative_to(tests.parent)) for d in dirs if not (d / "__init__.py").is_file())


# --- the rules hold for the tests ---------------------------------------------------


def test_tests_import_helpers_by_full_name() -> None:
    problems = check_tests()
    assert not problems, "imports that depend on sys.path order:\n" + "\n".join(map(str, problems))


def test_tests_are_a_package_tree() -> None:
    missing = missing_packages()
    assert not missing, f"directories without __init__.py (pytest would import by basename): {missing}"


def test_the_helpers_are_actually_scanned() -> None:
    # Guards against a vacuous pass (a moved root, a renamed helper).
    local = local_names()
    assert {"stack_helpers", "scripted_server", "kit", "kafka_fakes", "binance_reference_client"} <= local
    assert "gateway" not in local and "clients" not in local  # the project's packages, not test dirs
    assert TESTS / "integration" / "stack_helpers.py" in python_files()


# --- the checker catches what it should -------------------------------------------

LOCAL = frozenset({"stack_helpers", "kit", "test_gateway_stream", "conformance"})


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("import sys\nsys.path.insert(0, 'tests')\n", "sys.path.insert"),
        ("import sys\nsys.path.append('x')\n", "sys.path.append"),
        ("import sys\nsys.path.extend(['x'])\n", "sys.path.extend"),
        ("import sys\nsys.path += ['x']\n", "sys.path is changed"),
        ("import sys\nsys.path[:0] = ['x']\n", "sys.path is changed"),
        ("from stack_helpers import unique\n", "from stack_helpers import"),
        ("import stack_helpers\n", "import stack_helpers"),
        ("from kit import CASES\n", "bare name"),
        ("from test_gateway_stream import Probe\n", "from test_gateway_stream import"),
        ("from conformance.kit import CASES\n", "bare name"),
        ("def f():\n    from stack_helpers import unique\n", "bare name"),
        ("import importlib\nimportlib.import_module('stack_helpers')\n", "bare name"),
        ("from .stack_helpers import unique\n", "relative import"),
    ],
)
def test_checker_catches(source, fragment) -> None:
    problems = check_source(source, "tests/x/test_y.py", LOCAL)
    assert problems, f"nothing found in {source!r}"
    assert fragment in str(problems[0])
    assert str(problems[0]).startswith("tests/x/test_y.py:")


@pytest.mark.parametrize(
    "source",
    [
        "from tests.integration.stack_helpers import unique\n",
        "import tests.conformance.kit\n",
        "from gateway.hub import Hub\nimport mdcore.book\nimport sys\nprint(sys.path)\n",
        "import redis\nfrom pathlib import Path\n",
    ],
)
def test_checker_accepts(source) -> None:
    assert check_source(source, "tests/x/test_y.py", LOCAL) == []


def test_check_tests_finds_a_planted_problem(tmp_path) -> None:
    tests = tmp_path / "tests"
    (tests / "integration").mkdir(parents=True)
    (tests / "__init__.py").write_text("")
    (tests / "integration" / "__init__.py").write_text("")
    (tests / "integration" / "stack_helpers.py").write_text("X = 1\n")
    (tests / "integration" / "test_a.py").write_text("from tests.integration.stack_helpers import X\n")
    assert check_tests(tests, tmp_path) == []
    (tests / "integration" / "test_b.py").write_text('"""doc."""\n\nfrom stack_helpers import X\n')
    (problem,) = check_tests(tests, tmp_path)
    assert str(problem).startswith("tests/integration/test_b.py:3: ")
    (tests / "unit").mkdir()
    (tests / "unit" / "test_c.py").write_text("")
    assert missing_packages(tests) == ["tests/unit"]
