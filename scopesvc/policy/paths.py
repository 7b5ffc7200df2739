"""Request paths: normalising what a gateway saw, and matching it against endpoint templates.

The normaliser never guesses. A path that could mean two things to two parsers (dot segments,
encoded slashes, double encoding, `;` parameters, backslashes, empty segments, bad
percent-encoding, control characters) is rejected as malformed, so the decision cannot be
fooled into authorising one resource while the upstream serves another.

Rules (documented in docs/paths.md):
- the query string (from the first `?`) is ignored for matching; an encoded `?` or `#` is malformed;
- a fragment (`#`) is malformed: clients never send one, so its presence means confusion;
- only origin-form targets (`/a/b`) are accepted: absolute-form (`https://h/a`) is malformed;
- a trailing slash is stripped (`/users/me/` is `/users/me`) unless the catalog says `strict`,
  where it matches nothing;
- percent-encoded unreserved characters are decoded before matching (`/%75sers/me` is `/users/me`);
- matching is case-sensitive, static segments win over `{param}` segments at each level, and
  the method must be defined on the most specific matching template (no fallback to another);
- a whole segment `{name}` matches a parameter, so a template can be checked as it is written.

Matching walks a trie of segments, so its cost depends on the path's depth, not on the number
of endpoints.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Generic, TypeVar

MAX_PATH_LENGTH = 8192

T = TypeVar("T")


class MalformedPath(ValueError):
    """The path is ambiguous or invalid; the message says why."""


# The common case, which needs no further checks: non-empty segments of plain characters, an
# optional trailing slash (group 2), then the end or a query. Group 1 is the path without them.
_PLAIN = re.compile(r"((?:/[A-Za-z0-9_\-~!$&'()*+,=:@]+)+)(/?)(?:\?|\Z)")
# Characters a raw path segment may hold (RFC 3986 pchar, less ';', plus '%' checked below).
_SEGMENT_CHARS = re.compile(r"[A-Za-z0-9_\-~!$&'()*+,=:@.%]*")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_TEMPLATE_PARAM = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")


def _decode(segment: str) -> str:
    if _PERCENT.search(segment):
        raise MalformedPath(f"bad percent-encoding in segment {segment!r}")
    raw = bytearray()
    i = 0
    while i < len(segment):
        if segment[i] == "%":
            raw.append(int(segment[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(ord(segment[i]))
            i += 1
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPath(f"percent-encoding in segment {segment!r} is not UTF-8") from None
    if "/" in decoded or "\\" in decoded:
        raise MalformedPath(f"encoded slash or backslash in segment {segment!r}")
    if "?" in decoded or "#" in decoded:
        # An upstream that decodes and re-parses the path would see a query or fragment here.
        raise MalformedPath(f"encoded '?' or '#' in segment {segment!r}")
    if "%" in decoded:
        raise MalformedPath(f"double percent-encoding in segment {segment!r}")
    if decoded in (".", ".."):
        raise MalformedPath(f"encoded dot segment {segment!r}")
    if _CONTROL.search(decoded):
        raise MalformedPath(f"encoded control or space character in segment {segment!r}")
    return decoded


def _check_segment(segment: str) -> str:
    if segment == "":
        raise MalformedPath("empty path segment ('//')")
    if segment in (".", ".."):
        raise MalformedPath(f"dot segment {segment!r}")
    if _TEMPLATE_PARAM.fullmatch(segment):
        return segment
    if not _SEGMENT_CHARS.fullmatch(segment):
        bad = next(c for c in segment if not _SEGMENT_CHARS.fullmatch(c))
        if bad == ";":
            raise MalformedPath(f"';' path parameter in segment {segment!r} is ambiguous")
        if bad == "\\":
            raise MalformedPath(f"backslash in segment {segment!r}")
        if _CONTROL.fullmatch(bad):
            raise MalformedPath(f"control or space character {bad!r} in path")
        raise MalformedPath(f"character {bad!r} in segment {segment!r} must be percent-encoded")
    return _decode(segment) if "%" in segment else segment


def split_path(target: str, strip_trailing_slash: bool = True) -> list[str]:
    """Split a request target into decoded path segments, or raise `MalformedPath`.

    `/` gives `[]`. With `strip_trailing_slash=False` a trailing slash yields a final `""`
    segment, which no template has, so the request matches nothing.
    """
    if len(target) > MAX_PATH_LENGTH:
        raise MalformedPath(f"path is longer than {MAX_PATH_LENGTH} characters")
    plain = _PLAIN.match(target)
    if plain is not None:
        segments = plain[1][1:].split("/")
        if plain[2] and not strip_trailing_slash:
            segments.append("")
        return segments
    segments = _split_slow(target.partition("?")[0])
    if segments and segments[-1] == "" and strip_trailing_slash:
        segments.pop()
    return segments


def _split_slow(path: str) -> list[str]:
    if path == "/":
        return []
    if not path.startswith("/"):
        if "://" in path:
            raise MalformedPath("absolute-form request target; send the path only (origin-form)")
        if path == "*":
            raise MalformedPath("asterisk-form request target is not a resource path")
        if path == "":
            raise MalformedPath("empty path")
        raise MalformedPath("path must start with '/'")
    if "#" in path:
        raise MalformedPath("fragment ('#') in request target")
    raw = path[1:].split("/")
    last = len(raw) - 1
    return [
        "" if (i == last and segment == "") else _check_segment(segment)
        for i, segment in enumerate(raw)
    ]


def template_segments(template: str) -> list[str]:
    """Validate an endpoint template and return its segments, or raise `MalformedPath`."""
    if not template.startswith("/"):
        raise MalformedPath("template must start with '/'")
    if "?" in template or "#" in template:
        raise MalformedPath("template must not hold a query or fragment")
    if template == "/":
        return []
    if template.endswith("/"):
        raise MalformedPath("template must not end with '/'")
    segments = template[1:].split("/")
    for segment in segments:
        if "{" in segment or "}" in segment:
            if not _TEMPLATE_PARAM.fullmatch(segment):
                raise MalformedPath(
                    f"parameter segment {segment!r} must be a whole segment '{{name}}'"
                )
            continue
        if "%" in segment:
            raise MalformedPath(f"segment {segment!r}: write templates unencoded")
        _check_segment(segment)
    return segments


def is_param(segment: str) -> bool:
    return segment.startswith("{")


class _Node(Generic[T]):
    __slots__ = ("static", "param", "methods")

    def __init__(self) -> None:
        self.static: dict[str, _Node[T]] = {}
        self.param: _Node[T] | None = None
        self.methods: dict[str, T] = {}


class PathTrie(Generic[T]):
    """Endpoint templates by segment: static children first, then one `{param}` child."""

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()

    def add(self, segments: list[str], method: str, value: T) -> T | None:
        """Insert; return the value already at the same method and template shape, if any."""
        node = self._root
        for segment in segments:
            if is_param(segment):
                if node.param is None:
                    node.param = _Node()
                node = node.param
            else:
                node = node.static.setdefault(segment, _Node())
        existing = node.methods.get(method)
        if existing is None:
            node.methods[method] = value
        return existing

    def find(self, segments: list[str]) -> dict[str, T] | None:
        """The methods of the most specific template matching `segments`, or None."""
        node = _find(self._root, segments, 0)
        return None if node is None else node.methods

    def __iter__(self) -> Iterator[T]:
        stack = [self._root]
        while stack:
            node = stack.pop()
            yield from node.methods.values()
            stack.extend(node.static.values())
            if node.param is not None:
                stack.append(node.param)


def _find(node: _Node[T], segments: list[str], i: int) -> _Node[T] | None:
    n = len(segments)
    while i < n:
        segment = segments[i]
        i += 1
        child = node.static.get(segment)
        if child is None:
            param = node.param
            if param is None or segment == "":
                return None
            node = param
        elif node.param is None:
            node = child
        else:
            found = _find(child, segments, i)
            if found is not None:
                return found
            node = node.param
    return node if node.methods else None
