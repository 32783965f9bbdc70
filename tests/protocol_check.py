"""Holding a real class and a test's fake to the same Protocol, at run time.

mypy checks that a fake satisfies a Protocol where it is passed in, but only when mypy runs
(it is not part of CI), and a Protocol says nothing about parameter names or defaults that a
caller passes by keyword. These two helpers let a test check both: every member the Protocol
declares exists on the class, and each method has the Protocol's parameters, by name and
default, in order.
"""

from __future__ import annotations

import inspect


def protocol_members(proto: type) -> dict[str, object]:
    """The Protocol's declared attributes (None) and its public methods and properties."""
    names: dict[str, object] = {name: None for name in proto.__annotations__}
    for name, value in vars(proto).items():
        if not name.startswith("_") and (callable(value) or isinstance(value, property)):
            names[name] = value
    return names


def parameters(func: object) -> list[tuple[str, object]]:
    """``func``'s parameters as (name, default), in order (``inspect.Parameter.empty``: none)."""
    return [(p.name, p.default) for p in inspect.signature(func).parameters.values()]  # type: ignore[arg-type]
