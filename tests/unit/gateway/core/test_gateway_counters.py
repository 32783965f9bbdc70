"""gateway.core.counters: every counter the gateway keeps is documented, and how they count."""

from __future__ import annotations

import ast
import pathlib

import pytest

import gateway
from gateway.core.counters import HELP, Counters, is_documented


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


def test_a_close_without_a_code_and_each_code_count_apart() -> None:
    counters = Counters()
    counters.count_close(None)  # the transport went away without a close frame
    counters.count_close(1000)
    counters.count_close(1000)
    assert counters["connections_closed"] == 3
    assert counters["closes_none"] == 1 and counters["closes_1000"] == 2
    assert counters["closes_1008"] == 0  # an unused name reads 0 and is not created
    assert "closes_1008" not in counters.as_dict()


def test_as_dict_is_a_sorted_plain_copy() -> None:
    counters = Counters()
    counters["pings"] += 1
    counters["bytes_out"] += 10
    counters.count_error("rate_limited")
    snapshot = counters.as_dict()
    assert list(snapshot) == sorted(snapshot) == ["bytes_out", "errors_rate_limited", "pings"]
    assert type(snapshot) is dict
    counters["pings"] += 1
    assert snapshot["pings"] == 1  # a copy, not a view


@pytest.mark.parametrize(
    ("name", "documented"),
    [
        ("connections_opened", True),
        ("audit_behind", True),
        ("closes_4008", True),  # the per-code families
        ("closes_none", True),
        ("errors_bad_json", True),
        ("connection_opened", False),  # a misspelling is caught
        ("", False),
        ("close_1000", False),
        ("errors", False),  # the family's prefix needs its underscore
    ],
)
def test_is_documented(name: str, documented: bool) -> None:
    assert is_documented(name) is documented


def test_every_help_text_says_something_and_no_name_collides_with_a_family() -> None:
    assert HELP and all(text.strip() for text in HELP.values())
    assert not [name for name in HELP if name.startswith(("closes_", "errors_"))]
