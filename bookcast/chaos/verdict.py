"""The suite's goals as checks: each passes or fails with the figures that decide it. Pure.

Goals (issue 13): no divergent book, no seq published twice with different content, every
fault healed, no traceback in any tier's log, and every fault's own rule kept (garbage gets
documented answers, never 1011 or 500; a woken zombie is fenced; stalled clients are
closed). A check listed in :data:`KNOWN_FAILURES` still fails; the report names the bug.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# check name -> the tier bug that makes it fail today (see the report); empty when none is known
KNOWN_FAILURES: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    known: str | None = None  # why it is a known failure, if it is one

    def line(self) -> str:
        mark = "ok  " if self.ok else "KNOWN FAILURE" if self.known else "FAIL"
        text = f"{mark} {self.name}: {self.detail}"
        return text + (f" ({self.known})" if self.known and not self.ok else "")


def checks(figures: Mapping[str, Any]) -> list[Check]:
    """Every goal, judged from the run's figures (:func:`bookcast.chaos.report.figures`)."""
    faults = figures["faults"]["list"]
    unhealed = [f"#{f['index']} {f['kind']}" for f in faults if f["heal_s"] is None]
    problems = [f"#{f['index']} {p}" for f in faults for p in f["problems"]]
    final_problems = figures["final"].get("problems", [])
    divergent, compared = figures["divergent_books"], sum(figures["books_compared"].values())
    conflicts, tracebacks = figures["duplicates_different_content"], figures["tracebacks"]["count"]
    healed = f"{len(faults) - len(unhealed)} of {len(faults)} faults healed"
    out = [
        Check("books", divergent == 0, f"{divergent} divergent of {compared} compared"),
        Check("duplicates", conflicts == 0, f"{conflicts} (pair, epoch, seq) twice with different content"),
        Check(
            "healed",
            not unhealed and bool(faults),
            healed + (f"; not: {', '.join(unhealed)}" if unhealed else ""),
        ),
        Check("tracebacks", tracebacks == 0, f"{tracebacks} in the tiers' logs"),
        Check("fault_rules", not problems, "; ".join(problems) or "every fault's own rule kept"),
        Check("final", not final_problems, "; ".join(final_problems) or "quiet and in step at the end"),
    ]
    return [Check(c.name, c.ok, c.detail, KNOWN_FAILURES.get(c.name)) for c in out]


def passed(results: list[Check]) -> bool:
    return all(c.ok for c in results)
