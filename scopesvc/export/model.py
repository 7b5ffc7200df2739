"""The catalog as a data plane needs it: path shapes in the engine's priority order, and per
endpoint the methods that reach it and the scopes that grant each required scope.

The engine walks a trie (static segments before parameters, with backtracking); a proxy
matches a list in order. Sorting the template shapes so that a static segment comes before a
parameter at the first position where two shapes differ gives the trie's answer: of all the
shapes a path matches, the first in this order is the one the engine picks.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

from ..policy import Catalog
from ..policy.catalog import Endpoint
from ..policy.paths import MalformedPath, template_segments

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Node:
    """One template shape (parameters are alike whatever their names) and its endpoints by method."""

    name: str  # stable, sortable id: its position in priority order
    segments: tuple[str, ...]
    template: str  # as the first endpoint of this shape writes it
    endpoints: dict[str, Endpoint]

    def request_methods(self, method: str, head_as_get: bool) -> tuple[str, ...]:
        """The request methods that reach the endpoint `method` here (HEAD reaches GET's unless defined)."""
        if method == "GET" and head_as_get and "HEAD" not in self.endpoints:
            return ("GET", "HEAD")
        return (method,)

    def overlaps(self, other: Node) -> bool:
        """Whether some path matches both shapes."""
        return len(self.segments) == len(other.segments) and all(
            a == b or is_param(a) or is_param(b) for a, b in zip(self.segments, other.segments))


_PARAM = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
# The catalog and endpoint fields the exporters encode. Any other field the policy core has or
# gains (paths.case_insensitive...) is refused while it is set, as are template segments other
# than a whole `{name}`, and any-of alternatives and public endpoints where an exporter does not
# encode them (its `encodes`): an export never drops a rule it does not know.
_CATALOG_FIELDS = {
    "name", "revision", "description", "source", "authorize_url", "scopes_introduced_at", "universe", "scopes",
    "endpoints", "by_key", "trie", "events", "subscribe_scope", "subscribe_mask", "features", "pseudo_scopes",
    "strip_trailing_slash", "head_as_get", "error_body", "subscription_levels",  # webhooks: not HTTP requests
}
_ENDPOINT_FIELDS = {"method", "template", "key", "operation_id", "summary", "scopes", "mask", "www_authenticate",
                    "deny_body", "any_of", "alternatives", "answers", "public"}


def is_param(segment: str) -> bool:
    """A whole-segment `{name}` parameter (the one parameter form the exporters encode)."""
    return _PARAM.fullmatch(segment) is not None


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
            what += [f"template segment {s!r}" for s in template_segments(endpoint.template)
                     if ("{" in s or "}" in s) and not is_param(s)]
        except MalformedPath as exc:
            what.append(f"template {endpoint.template!r} ({exc})")
        if what:
            reasons.append(f"{endpoint.key}: {', '.join(what)} (not encoded by this exporter yet)")
    return reasons


def _shape(segments: Sequence[str]) -> tuple[tuple[int, str], ...]:
    return tuple((1, "") if is_param(s) else (0, s) for s in segments)


def nodes(catalog: Catalog) -> list[Node]:
    """The catalog's template shapes in the engine's priority order (see the module docstring)."""
    shapes: dict[tuple[tuple[int, str], ...], tuple[tuple[str, ...], str, dict[str, Endpoint]]] = {}
    for endpoint in catalog.endpoints:
        segments = tuple(template_segments(endpoint.template))
        entry = shapes.setdefault(_shape(segments), (segments, endpoint.template, {}))
        entry[2][endpoint.method] = endpoint
    ordered = sorted(shapes.items())
    width = max(4, len(str(len(ordered))))
    return [Node(f"n{i + 1:0{width}d}", segments, template, endpoints)
            for i, (_, (segments, template, endpoints)) in enumerate(ordered)]


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
