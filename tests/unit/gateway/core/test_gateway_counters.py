"""gateway.core.counters: every counter the gateway keeps is documented, and how they count."""

from __future__ import annotations

import ast
import pathlib

import gateway
from gateway.core.counters import Counters, is_documented


def test_every_counter_the_gateway_uses_is_documented() -> None:
    """Counter names must be listed in gateway.core.counters.HELP (metrics export them by name)."""
    used: set[str] = set()
    root = pathlib.Path(gateway.__file__).parent  # the package itself, wherever this test lives
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)
                and "counters" in ast.unparse(node.value)
            ):
                used.add(node.slice.value)
    assert used, "the scan found no counter at all"
    assert sorted(n for n in used if not is_documented(n)) == []
    counters = Counters()
    counters.count_close(1008)
    counters.count_error("bad_json")
    assert counters.as_dict() == {"closes_1008": 1, "connections_closed": 1, "errors_bad_json": 1}
