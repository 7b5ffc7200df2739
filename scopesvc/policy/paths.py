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
- the method must be defined on the most specific matching template (no fallback to another);
- a segment written as a template segment (`{name}`, `thumbnail.{ext}`, `{name=**}:cancel`) is a
  value like any other, so a template can be checked as it is written.

Templates: a segment is a literal, or one parameter with optional literal text around it
(`{id}`, `thumbnail.{extension}`, `{id}.json`, `{name}:cancel`); the last segment may instead be
a multi-segment parameter `{name=**}` (one or more whole segments) with an optional literal
suffix (a custom verb, `{name=**}:cancel`). Precedence, decided at the first segment where two
matching templates differ: a literal segment, then a parameter with more literal text around it,
then one with less, then a multi-segment parameter (longer suffix first). Two parameters with
as much literal text that can match the same segment (`a{x}` and `{x}b`) are refused at load.
Literal text is compared exactly, or ignoring ASCII case with the catalog's `case_insensitive`.

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
_LITERAL = "[A-Za-z0-9_\\-~!$&'()*+,=:@.]*"
# One template segment: literal prefix, `{name}` or `{name=**}`, literal suffix (groups 1-4).
_TEMPLATE_SEGMENT = re.compile(rf"({_LITERAL})\{{([A-Za-z_][A-Za-z0-9_]*)(=\*\*)?\}}({_LITERAL})")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
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
    if "{" in segment and _TEMPLATE_SEGMENT.fullmatch(segment):
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
    for i, segment in enumerate(segments):
        if "%" in segment:
            raise MalformedPath(f"segment {segment!r}: write templates unencoded")
        if "{" not in segment and "}" not in segment:
            _check_segment(segment)
            continue
        match = _TEMPLATE_SEGMENT.fullmatch(segment)
        if match is None:
            raise MalformedPath(f"segment {segment!r}: a segment holds at most one parameter, written "
                                "{name} or {name=**}, with literal text around it")
        prefix, name, rest, _ = match.groups()
        if rest and (prefix or i != len(segments) - 1):
            raise MalformedPath(f"segment {segment!r}: a multi-segment parameter {{{name}=**}} is the whole last "
                                "segment, optionally followed by a literal suffix such as ':verb'")
    return segments


def parameter_parts(segment: str) -> tuple[str, bool, str] | None:
    """A template segment's literal prefix, whether its parameter is `{name=**}`, and literal suffix;
    None for a literal segment."""
    match = _TEMPLATE_SEGMENT.fullmatch(segment) if "{" in segment else None
    return None if match is None else (match[1], bool(match[3]), match[4])


class AmbiguousTemplates(ValueError):
    """Two templates no precedence rule can order; `other` is the template already in the trie."""

    def __init__(self, other: str) -> None:
        super().__init__(other)
        self.other = other


class _Node(Generic[T]):
    """One trie level. `param` is the `{name}` child; `patterns` the children with literal text
    around a parameter, in precedence order (more literal text first); `rest` the `{name=**}`
    children (longer suffix first). The common node has neither list, and matches on `static`
    and `param` alone."""

    __slots__ = ("methods", "param", "patterns", "rest", "static", "template")

    def __init__(self, template: str) -> None:
        self.static: dict[str, _Node[T]] = {}
        self.param: _Node[T] | None = None
        self.patterns: list[tuple[str, str, _Node[T]]] | None = None
        self.rest: list[tuple[str, _Node[T]]] | None = None
        self.methods: dict[str, T] = {}
        self.template = template  # the first template through this node, to name it in errors


def _overlap(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Can `prefix{x}suffix` patterns `a` and `b` both match one segment?"""
    return (a[0].startswith(b[0]) or b[0].startswith(a[0])) and (a[1].endswith(b[1]) or b[1].endswith(a[1]))


class PathTrie(Generic[T]):
    """Endpoint templates by segment; see the module docstring for the precedence it implements."""

    def __init__(self, case_insensitive: bool = False) -> None:
        self._root: _Node[T] = _Node("/")
        self.case_insensitive = case_insensitive

    def add(self, segments: list[str], method: str, value: T) -> T | None:
        """Insert; return the value already at the same method and template shape, if any.

        Raises `AmbiguousTemplates` when a segment's pattern cannot be ordered against another's.
        """
        node = self._root
        template = "/" + "/".join(segments)
        for segment in segments:
            if self.case_insensitive:
                segment = segment.translate(_ASCII_LOWER)
            match = _TEMPLATE_SEGMENT.fullmatch(segment) if "{" in segment else None
            if match is None:
                node = node.static.setdefault(segment, _Node(template))
                continue
            prefix, _, rest, suffix = match.groups()
            if rest:
                node.rest = node.rest or []
                node = _rest_child(node.rest, suffix, template)
            elif not prefix and not suffix:
                if node.param is None:
                    node.param = _Node(template)
                node = node.param
            else:
                node.patterns = node.patterns or []
                for other_prefix, other_suffix, other in node.patterns:
                    if (other_prefix, other_suffix) == (prefix, suffix):
                        break
                    if len(other_prefix) + len(other_suffix) == len(prefix) + len(suffix) and _overlap(
                            (prefix, suffix), (other_prefix, other_suffix)):
                        raise AmbiguousTemplates(other.template)
                else:
                    other = _Node(template)
                    node.patterns.append((prefix, suffix, other))
                    node.patterns.sort(key=lambda entry: -len(entry[0]) - len(entry[1]))
                node = other
        existing = node.methods.get(method)
        if existing is None:
            node.methods[method] = value
        return existing

    def find(self, segments: list[str]) -> dict[str, T] | None:
        """The methods of the most specific template matching `segments`, or None."""
        if self.case_insensitive:
            segments = [segment.translate(_ASCII_LOWER) for segment in segments]
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
            stack.extend(child for _, _, child in node.patterns or ())
            stack.extend(child for _, child in node.rest or ())


def _rest_child(entries: list[tuple[str, _Node[T]]], suffix: str, template: str) -> _Node[T]:
    """The `{name=**}suffix` child of a node (created in precedence order: longer suffix first)."""
    for other_suffix, child in entries:
        if other_suffix == suffix:
            return child
    child = _Node(template)
    entries.append((suffix, child))
    entries.sort(key=lambda entry: -len(entry[0]))
    return child


def _find(node: _Node[T], segments: list[str], i: int) -> _Node[T] | None:
    n = len(segments)
    while i < n:
        segment = segments[i]
        i += 1
        child = node.static.get(segment)
        if node.patterns is not None or node.rest is not None:
            return _find_patterns(node, child, segments, i)
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


def _find_patterns(node: _Node[T], child: _Node[T] | None, segments: list[str], i: int) -> _Node[T] | None:
    """`_find` at a node with patterns or multi-segment parameters: each candidate in precedence order."""
    segment = segments[i - 1]
    if child is not None:
        found = _find(child, segments, i)
        if found is not None:
            return found
    if segment == "":
        return None  # an empty segment (strict trailing slash) never fills a parameter
    for prefix, suffix, pattern in node.patterns or ():
        if len(segment) > len(prefix) + len(suffix) and segment.startswith(prefix) and segment.endswith(suffix):
            found = _find(pattern, segments, i)
            if found is not None:
                return found
    if node.param is not None:
        found = _find(node.param, segments, i)
        if found is not None:
            return found
    last = segments[-1]
    for suffix, rest in node.rest or ():
        # One or more whole segments, the last ending in the suffix after at least one character.
        if rest.methods and len(last) > len(suffix) and last.endswith(suffix):
            return rest
    return None
