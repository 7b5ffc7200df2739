"""The catalog as a data plane needs it: path shapes in the engine's priority order, and per
endpoint the methods that reach it and the scopes that grant each required scope.

The engine walks a trie with backtracking (scopesvc/policy/paths.py): at each segment it tries
a literal child, then parameters with literal text around them (more text first), then a plain
`{name}`, then `{name=**}` (longer suffix first). A proxy matches a list in order. Each template
segment becomes a `Part` whose tuple order is that precedence, so sorting the template shapes
by their parts gives the trie's answer: of all the shapes a path matches, the first in this
order is the one the engine picks. (Two shapes a path both matches agree up to a position where
they differ; there both parts match the path, and the trie tries them in their parts' order:
two different literals, or two same-length texts, never match one segment; the catalog refuses
the latter as ambiguous.)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import NamedTuple

from ..policy import Catalog
from ..policy.catalog import Endpoint
from ..policy.paths import MalformedPath, parameter_parts, template_segments

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# Segment kinds, in the engine's precedence order at one position.
LITERAL, TEXT, PARAM, REST = range(4)


class Part(NamedTuple):
    """One template segment as the engine matches it; tuples compare in precedence order.

    LITERAL: the segment `prefix`; TEXT: `prefix{x}suffix` (at least one character for `x`);
    PARAM: `{x}`; REST: `{x=**}suffix`, one or more whole segments, the last ending in `suffix`
    after at least one character. With case-insensitive paths the literal text is lower case.
    """

    kind: int
    weight: int  # minus the length of the literal text: more text goes first
    prefix: str
    suffix: str


def part(segment: str, case_insensitive: bool = False) -> Part:
    """The `Part` of a template segment (as `template_segments` returns it)."""
    if case_insensitive:
        segment = segment.lower()  # template text is ASCII
    parts = parameter_parts(segment)
    if parts is None:
        return Part(LITERAL, 0, segment, "")
    prefix, rest, suffix = parts
    if rest:
        return Part(REST, -len(suffix), "", suffix)
    if prefix or suffix:
        return Part(TEXT, -len(prefix) - len(suffix), prefix, suffix)
    return Part(PARAM, 0, "", "")


def _compatible_ends(a: str, b: str) -> bool:
    return a.endswith(b) or b.endswith(a)


def _same_segment(a: Part, b: Part) -> bool:
    """Whether one segment can match both single-segment parts."""
    if a.kind > b.kind:
        a, b = b, a
    if b.kind == PARAM:
        return True
    if a.kind == LITERAL:
        text = a.prefix
        if b.kind == LITERAL:
            return text == b.prefix
        return len(text) > -b.weight and text.startswith(b.prefix) and text.endswith(b.suffix)
    return (a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)) and _compatible_ends(a.suffix, b.suffix)


def _ends_in(last: Part, suffix: str) -> bool:
    """Whether a segment `last` matches (the last of a REST one included) can end in `suffix` after
    at least one character."""
    if last.kind == LITERAL:
        return len(last.prefix) > len(suffix) and last.prefix.endswith(suffix)
    return last.kind == PARAM or _compatible_ends(last.suffix, suffix)


def parts_overlap(a: Sequence[Part], b: Sequence[Part]) -> bool:
    """Whether some path matches both shapes."""
    for x, y in zip(a, b):
        if x.kind == REST or y.kind == REST:
            # The REST part takes the other shape's remaining segments (at least one: zip got here),
            # whose last one must end in its suffix.
            rest, other = (x, b) if x.kind == REST else (y, a)
            return _ends_in(other[-1], rest.suffix)
        if not _same_segment(x, y):
            return False
    return len(a) == len(b)


@dataclass(frozen=True)
class Node:
    """One template shape (parameters are alike whatever their names) and its endpoints by method."""

    name: str  # stable, sortable id: its position in priority order
    segments: tuple[str, ...]
    template: str  # as the first endpoint of this shape writes it
    endpoints: dict[str, Endpoint]
    parts: tuple[Part, ...]

    def request_methods(self, method: str, head_as_get: bool) -> tuple[str, ...]:
        """The request methods that reach the endpoint `method` here (HEAD reaches GET's unless defined)."""
        if method == "GET" and head_as_get and "HEAD" not in self.endpoints:
            return ("GET", "HEAD")
        return (method,)

    def overlaps(self, other: Node) -> bool:
        """Whether some path matches both shapes."""
        return parts_overlap(self.parts, other.parts)


# The catalog and endpoint fields the exporters encode. Any other field the policy core has or
# gains is refused while it is set, as are any-of alternatives and public endpoints where an
# exporter does not encode them (its `encodes`): an export never drops a rule it does not know.
_CATALOG_FIELDS = {
    "name", "revision", "description", "source", "authorize_url", "scopes_introduced_at", "universe", "scopes",
    "endpoints", "by_key", "trie", "events", "subscribe_scope", "subscribe_mask", "features", "pseudo_scopes",
    "strip_trailing_slash", "head_as_get", "error_body", "subscription_levels",  # webhooks: not HTTP requests
    "case_insensitive",
}
_ENDPOINT_FIELDS = {"method", "template", "key", "operation_id", "summary", "scopes", "mask", "www_authenticate",
                    "deny_body", "any_of", "alternatives", "answers", "public"}


ANY_OF = "any_of"
PUBLIC = "public"


def unsupported(catalog: Catalog, encodes: frozenset[str] = frozenset()) -> list[str]:
    """What in `catalog` an exporter does not encode yet (empty: everything is encoded); `encodes`
    names what it does of ANY_OF and PUBLIC."""
    reasons = [f"catalog setting {f.name} (not encoded by this exporter yet)" for f in fields(catalog)
               if f.name not in _CATALOG_FIELDS and getattr(catalog, f.name)]
    for endpoint in catalog.endpoints:
        what = [f"field {f.name}" for f in fields(endpoint)
                if f.name not in _ENDPOINT_FIELDS and getattr(endpoint, f.name)]
        if endpoint.public and PUBLIC not in encodes:
            what.append("public: true")
        if len(endpoint.any_of) > 1 and ANY_OF not in encodes:
            what.append("any_of alternatives (the deny answer depends on the token)")
        try:
            template_segments(endpoint.template)
        except MalformedPath as exc:
            what.append(f"template {endpoint.template!r} ({exc})")
        if what:
            reasons.append(f"{endpoint.key}: {', '.join(what)} (not encoded by this exporter yet)")
    return reasons


def nodes(catalog: Catalog) -> list[Node]:
    """The catalog's template shapes in the engine's priority order (see the module docstring)."""
    shapes: dict[tuple[Part, ...], tuple[tuple[str, ...], str, dict[str, Endpoint]]] = {}
    for endpoint in catalog.endpoints:
        segments = tuple(template_segments(endpoint.template))
        key = tuple(part(s, catalog.case_insensitive) for s in segments)
        entry = shapes.setdefault(key, (segments, endpoint.template, {}))
        entry[2][endpoint.method] = endpoint
    ordered = sorted(shapes.items())
    width = max(4, len(str(len(ordered))))
    return [Node(f"n{i + 1:0{width}d}", segments, template, endpoints, key)
            for i, (key, (segments, template, endpoints)) in enumerate(ordered)]


def outranked_by(ordered: Sequence[Node], node: Node) -> list[Node]:
    """The shapes before `node` that share paths with it: a path matching one of them is not `node`'s."""
    out = []
    for other in ordered:
        if other is node:
            return out
        if other.overlaps(node):
            out.append(other)
    raise ValueError(f"{node.template} is not in the list")


def granting(catalog: Catalog, required: str) -> list[str]:
    """The scopes that grant `required` (itself and every scope implying it), in catalog order."""
    universe = catalog.universe
    bit = universe.bit(required)
    return [name for name in universe.names if universe.effective((name,)) & bit]


def _first(predicate: Callable[[float], bool], low: float, high: float) -> float:
    """The smallest double in (low, high] where a monotone `predicate` holds (false at low, true at high)."""
    while True:
        middle = low + (high - low) / 2
        if middle <= low or middle >= high:
            return high
        if predicate(middle):
            high = middle
        else:
            low = middle


def _to_datetime(seconds: float) -> dt.datetime | None:
    """`iat` as the adapter converts it (gateway.attributes.token_from_payload); None when it cannot."""
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class IatBounds:
    """Where the adapter's reading of a numeric `iat` changes, as exact doubles.

    `valid` is the range of `iat` values it can convert (outside it the engine refuses the
    token); `legacy_end`, when the catalog has a cut-over, is the first value at or after it.
    """

    valid_start: float
    valid_end: float
    legacy_end: float | None


def iat_bounds(cutover: dt.datetime | None) -> IatBounds:
    valid_start = _first(lambda x: _to_datetime(x) is not None, -1e20, 0.0)
    valid_end = _first(lambda x: _to_datetime(x) is None, 0.0, 1e20)
    legacy_end = None
    if cutover is not None:
        seconds = (cutover - _EPOCH).total_seconds()
        if _to_datetime(seconds) is None:  # a cut-over the adapter cannot reach
            legacy_end = valid_end if seconds > 0 else valid_start
        else:
            def at_or_after(x: float) -> bool:
                when = _to_datetime(x)
                return when is not None and when >= cutover
            legacy_end = _first(at_or_after, math.floor(seconds) - 2.0, math.ceil(seconds) + 2.0)
    return IatBounds(valid_start, valid_end, legacy_end)
