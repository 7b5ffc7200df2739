"""Catalog validation bookkeeping: where each entry is, and every problem found, reported at once.

`compile_catalog` walks the document with a `Validator`, naming each entry with a `Where`
(its human name, e.g. `endpoints[3] (GET /x)`, and its path in the document, e.g.
`("endpoints", 3, "scopes", 1)`). A problem is recorded, never raised, so one pass finds them
all; `raise_if_any()` raises a single `CatalogError` listing every `Problem` with its line.

Line numbers come from whoever parsed the file (`scopesvc.catalog.files` composes YAML nodes and
hands over `Lines`): this module does no I/O. A path with no line of its own takes the line of
its nearest enclosing entry. Adding a check for a new catalog feature means calling `add()` with
the entry's `Where`; the typed getters (`string`, `strings`, `mapping`, `entries`, `boolean`)
record their own problems and return a usable default.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import CatalogError, Problem

Key = str | int
DocPath = tuple[Key, ...]
Lines = Mapping[DocPath, int]  # document path -> 1-based line


@dataclass(frozen=True, slots=True)
class Where:
    """An entry as a reader names it (`entry`) and as the document holds it (`path`, for its line)."""

    entry: str
    path: DocPath = ()

    def item(self, key: Key) -> Where:
        """A child entry: `endpoints` -> `endpoints[3]`, `oauth` -> `oauth.authorize_url`."""
        named = f"{self.entry}[{key}]" if isinstance(key, int) else f"{self.entry}.{key}" if self.entry else key
        return Where(named, self.path + (key,))

    def named(self, label: str) -> Where:
        """The same entry with its name shown: `endpoints[3] (GET /x)`."""
        return Where(f"{self.entry} ({label})", self.path) if label else self

    def __truediv__(self, key: Key) -> Where:
        """The same entry, pointing at one of its fields for a more precise line."""
        return Where(self.entry, self.path + (key,))


TOP = Where("catalog")


def suggestion(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for a near miss among `choices`, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def field(name: str) -> Where:
    """A top-level field of the catalog: `oauth`, `endpoints`, ..."""
    return Where(name, (name,))


class Validator:
    """Collects every problem of one catalog document; see the module docstring."""

    def __init__(self, source: str, lines: Lines | None = None) -> None:
        self.source = source
        self.lines = lines
        self.problems: list[Problem] = []

    def line(self, path: DocPath) -> int | None:
        if self.lines is None:
            return None
        while path:
            found = self.lines.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return self.lines.get(())

    def add(self, where: Where, reason: str) -> None:
        self.problems.append(Problem(self.source, self.line(where.path), where.entry, reason))

    def raise_if_any(self) -> None:
        if self.problems:
            raise CatalogError(self.source, self.problems)

    def string(self, obj: Mapping[str, Any], key: str, where: Where, required: bool = True) -> str:
        value = obj.get(key)
        if value is None:
            if required:
                self.add(where, f"'{key}' is required")
            return ""
        if not isinstance(value, str):
            self.add(where / key, f"'{key}' must be a string, not {type(value).__name__}")
            return ""
        return value

    def strings(self, obj: Mapping[str, Any], key: str, where: Where) -> list[str]:
        value = obj.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(where / key, f"'{key}' must be a list of strings")
            return []
        return value

    def boolean(self, obj: Mapping[str, Any], key: str, where: Where, default: bool) -> bool:
        value = obj.get(key, default)
        if not isinstance(value, bool):
            self.add(where.item(key), "must be true or false")
            return default
        return value

    def mapping(self, value: Any, where: Where, allowed: Sequence[str]) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.add(where, f"must be a mapping, not {type(value).__name__}")
            return None
        for key in value:
            if key not in allowed:
                hint = suggestion(str(key), allowed) or f" (expected one of: {', '.join(allowed)})"
                self.add(where / key, f"unknown field {key!r}{hint}")
        return value

    def entries(self, value: Any, where: Where) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(where, f"must be a list, not {type(value).__name__}")
            return []
        return value
