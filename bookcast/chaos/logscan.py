"""Tracebacks in a tier's log: each one is a bug the tier did not foresee (goal: none).

Pure: it reads text. A traceback is summarised by its last line (the exception) and the
log line that introduced it, which is what a report needs to point at the bug.
"""

from __future__ import annotations

from dataclasses import dataclass

MARK = "Traceback (most recent call last):"
CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


@dataclass(frozen=True, slots=True)
class Traceback:
    source: str  # which log (tier and incarnation)
    context: str  # the log line before the traceback
    exception: str  # its last line

    def __str__(self) -> str:
        return f"{self.source}: {self.exception} (after: {self.context})"


def find_tracebacks(source: str, text: str) -> list[Traceback]:
    """Every traceback in ``text`` (a chain counts once): the line before it and its exception."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        if MARK not in line:
            continue
        before = [earlier.strip() for earlier in lines[max(0, i - 3) : i] if earlier.strip()]
        context = before[-1] if before else ""
        if context.startswith(CHAINED):
            continue  # the same failure as the traceback above it
        exception = ""
        for follow in lines[i + 1 :]:
            if follow.startswith((" ", "\t")) or not follow.strip():
                continue  # frames and source lines are indented
            exception = follow.strip()
            break
        found.append(Traceback(source, context[:200], exception[:200]))
    return found
