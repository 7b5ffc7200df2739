"""Errors the policy core raises: a bad catalog, or a request it cannot decide on.

Neither is a deny. Adapters turn `CatalogError` into a refused load (the old catalog keeps
serving) and `RequestError` into gRPC `INVALID_ARGUMENT` / CLI exit code 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a catalog: in which file, on which line (None when unknown), which entry, and why."""

    file: str
    line: int | None
    entry: str
    reason: str

    def __str__(self) -> str:
        # file:line: is what editors and CI annotators turn into a link.
        place = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{place}: {self.entry}: {self.reason}" if self.entry else f"{place}: {self.reason}"

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "entry": self.entry, "reason": self.reason}


class CatalogError(ValueError):
    """A catalog failed validation. `problems` holds every problem found; `issues` the same as text lines.

    `note` says something true of all of them (e.g. that a JSON document carries no line numbers).
    """

    def __init__(self, source: str, problems: Sequence[Problem | str], note: str = "") -> None:
        self.source = source
        self.note = note
        self.problems = tuple(p if isinstance(p, Problem) else Problem(source, None, "", p) for p in problems)
        self.issues = tuple(str(p) for p in self.problems)
        count = len(self.problems)
        shown = "\n  ".join(self.issues[:MAX_SHOWN])
        more = f"\n  ... and {count - MAX_SHOWN} more" if count > MAX_SHOWN else ""
        noted = f" ({note})" if note else ""
        plural = "problem" if count == 1 else "problems"
        super().__init__(f"{source}: invalid catalog, {count} {plural}{noted}:\n  {shown}{more}")

    def noted(self, note: str) -> CatalogError:
        """The same problems with `note` added."""
        return CatalogError(self.source, self.problems, note)


class RequestError(ValueError):
    """A request field is missing or unusable; `field` is its path in the request (e.g. `features[2]`)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")
