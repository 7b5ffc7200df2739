"""Errors the policy core raises: a bad catalog, or a request it cannot decide on.

Neither is a deny. Adapters turn `CatalogError` into a refused load (the old catalog keeps
serving) and `RequestError` into gRPC `INVALID_ARGUMENT` / CLI exit code 2.
"""

from __future__ import annotations

from collections.abc import Sequence


class CatalogError(ValueError):
    """A catalog failed validation. `issues` holds every problem found, each "where: reason"."""

    def __init__(self, source: str, issues: Sequence[str]) -> None:
        self.source = source
        self.issues = tuple(issues)
        shown = "\n  ".join(self.issues[:50])
        more = f"\n  ... and {len(self.issues) - 50} more" if len(self.issues) > 50 else ""
        super().__init__(f"{source}: invalid catalog ({len(self.issues)} problem(s)):\n  {shown}{more}")


class RequestError(ValueError):
    """A request field is missing or unusable; `field` is its path in the request (e.g. `features[2]`)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")
