"""Property tests: the path normaliser and matcher agree with a deliberately simple reference.

The reference below restates docs/paths.md as plainly as possible (string splits, one regex per
template, `max` over a specificity key) and shares no code with scopesvc.policy.paths. Paths are
generated from templates and from a pool of confusing pieces (dot segments, encoded dots and
slashes, double encoding, backslashes, `;` parameters, fragments, absolute form...).
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from scopesvc.policy.paths import (
    MAX_PATH_LENGTH,
    AmbiguousTemplates,
    MalformedPath,
    PathTrie,
    split_path,
    template_segments,
)

# -- the reference ------------------------------------------------------------------------

_ALLOWED_RAW = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@%")
_HEX = set("0123456789abcdefABCDEF")
_NAME = "[A-Za-z_][A-Za-z0-9_]*"
_PARAM = re.compile(r"\{" + _NAME + r"\}")
_LIT = "[A-Za-z0-9._~!$&'()*+,=:@-]*"
# A template segment as docs/paths.md writes it: literal text, one {name} or {name=**}, literal text.
_TEMPLATE_SEGMENT = re.compile("(" + _LIT + r")\{" + _NAME + r"(=\*\*)?\}(" + _LIT + ")")


def _is_control(ch: str) -> bool:
    return ord(ch) <= 0x20 or 0x7F <= ord(ch) <= 0x9F


def _ref_segment(raw: str) -> str | None:
    """A decoded segment, or None when the segment makes the path malformed."""
    if raw in ("", ".", ".."):
        return None
    if _TEMPLATE_SEGMENT.fullmatch(raw):
        return raw
    if any(ch not in _ALLOWED_RAW for ch in raw):
        return None
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == "%":
            pair = raw[i + 1 : i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                return None
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(ord(raw[i]))
            i += 1
    try:
        decoded = out.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if decoded in (".", "..") or any(c in "/\\%?#" or _is_control(c) for c in decoded):
        return None
    return decoded


def reference_split(target: str, strip_trailing_slash: bool = True) -> list[str] | None:
    """The segments of a request target per docs/paths.md, or None when it is malformed."""
    if len(target) > MAX_PATH_LENGTH:
        return None
    path = target.split("?", 1)[0]
    if not path.startswith("/") or "#" in path:
        return None
    if path == "/":
        return []
    raw = path[1:].split("/")
    trailing = raw[-1] == ""
    if trailing:
        raw = raw[:-1]
    segments = [_ref_segment(s) for s in raw]
    if any(s is None for s in segments):
        return None
    out = [s for s in segments if s is not None]
    if trailing and not strip_trailing_slash:
        out.append("")
    return out


def _lower(text: str, case_insensitive: bool) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text) if case_insensitive else text


def _rank(part: str) -> tuple[int, int]:
    """How specific one template segment is: a literal, then a parameter with more literal text
    around it, then with less, then a multi-segment parameter (longer suffix first)."""
    match = _TEMPLATE_SEGMENT.fullmatch(part)
    if match is None:
        return (3, 0)
    prefix, many, suffix = match.groups()
    return (1, len(suffix)) if many else (2, len(prefix) + len(suffix))


def _regex(part: str) -> str:
    match = _TEMPLATE_SEGMENT.fullmatch(part)
    if match is None:
        return re.escape(part)
    prefix, many, suffix = match.groups()
    if many:
        return "[^/]+(?:/[^/]+)*" + re.escape(suffix)  # one or more segments, the last not only the suffix
    return re.escape(prefix) + "[^/]+" + re.escape(suffix)


def reference_match(templates: list[str], segments: list[str], case_insensitive: bool = False) -> str | None:
    """The most specific template matching `segments`, compared at the first segment position where
    two matching templates differ (one regex per template, `max` over a specificity key)."""
    matching = []
    for template in templates:
        parts = [] if template == "/" else _lower(template, case_insensitive)[1:].split("/")
        pattern = "/".join(_regex(p) for p in parts)
        if "" not in segments and re.fullmatch(pattern, "/".join(_lower(s, case_insensitive) for s in segments)):
            matching.append((tuple(_rank(p) for p in parts), template))
    return max(matching)[1] if matching else None


def reference_ambiguous(a: str, b: str, case_insensitive: bool = False) -> bool:
    """True when no rule orders templates `a` and `b`: at the first segment where their shapes
    differ, both are single-segment parameters with as much literal text, and one segment can
    match both (one prefix starts the other, one suffix ends the other)."""
    for x, y in zip(_lower(a, case_insensitive)[1:].split("/"), _lower(b, case_insensitive)[1:].split("/"),
                    strict=False):
        if _shape_part(x) == _shape_part(y):
            continue
        mx, my = _TEMPLATE_SEGMENT.fullmatch(x), _TEMPLATE_SEGMENT.fullmatch(y)
        if mx is None or my is None or mx.group(2) or my.group(2) or _rank(x) != _rank(y):
            return False
        (px, _, sx), (py, _, sy) = mx.groups(), my.groups()
        return (px.startswith(py) or py.startswith(px)) and (sx.endswith(sy) or sy.endswith(sx))
    return False


# -- generated paths ----------------------------------------------------------------------

STATICS = ["users", "me", "events", "a", "b", "v2"]
TRICKY = [
    ".", "..", "%2e", "%2E%2e", ".%2e", "%2f", "%2F", "a%2Fb", "%5c", "%5C", "%252e%252e", "%252F", "%25",
    "a;b=1", ";", "a\\b", "\\", "", "%", "%4", "%zz", "%ff", "%C3%A9", "%c3", "%00", "%20", "%7f", "%7Bx%7D",
    "{x}", "{x", "x}", "é", "a b", "a\tb", "a\x00", "#", "a#b", "?", "%3F", "%23", "%75sers", "%6D%65", "...",
    "a.b", "~", "@:", "%E2%80%AE", "\u202e", "%C0%AE", "%C0%AF", "%e0%80%ae",
]  # fmt: skip
segment = st.one_of(
    st.sampled_from(STATICS),
    st.sampled_from(TRICKY),
    st.text(alphabet="abz09-._~%2eEfF5cC/;\\:@", max_size=6),
    st.text(max_size=4),
)
prefix = st.sampled_from(["/", "/", "/", "", "//", "http://h/", "https://api.example/", "*", "\\"])
suffix = st.sampled_from(["", "", "/", "?", "?a=b", "?x=/../%2F", "#f", "?q#f", "/?", "//", "%2F", ";x"])


@st.composite
def targets(draw) -> str:  # type: ignore[no-untyped-def]
    parts = draw(st.lists(segment, min_size=0, max_size=5))
    return draw(prefix) + "/".join(parts) + draw(suffix)


def engine_split(target: str, strip: bool = True) -> list[str] | None:
    try:
        return split_path(target, strip)
    except MalformedPath:
        return None


@settings(max_examples=2000, deadline=None)
@given(targets(), st.booleans())
def test_normaliser_agrees_with_reference(target, strip):
    assert engine_split(target, strip) == reference_split(target, strip), target


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40), st.booleans())
def test_normaliser_agrees_with_reference_on_any_text(target, strip):
    assert engine_split(target, strip) == reference_split(target, strip), target


@settings(max_examples=1500, deadline=None)
@given(targets())
def test_accepted_paths_hold_no_confusable_segment(target):
    """Whatever is accepted decodes to plain segments: no dot segment, slash, backslash, '%', '?' or '#'."""
    segments = engine_split(target)
    if segments is None:
        return
    for seg in segments:
        assert seg not in (".", "..", "")
        assert not any(c in "/\\%?#" or _is_control(c) for c in seg), (target, seg)


template_segment = st.sampled_from(["users", "me", "events", "a", "b", "{x}", "{y}"])
template_sets = st.lists(st.lists(template_segment, max_size=4).map(lambda p: "/" + "/".join(p)),
                         min_size=1, max_size=12)
# The richer forms: literal text around a parameter, custom verbs, multi-segment parameters (last only).
rich_segment = st.sampled_from(["users", "Users", "me", "a", "a.json", "{x}", "{y}", "{x}.json", "{x}.JSON",
                                "thumb.{e}", "a{x}", "{x}b", "ab{x}", "{x}:cancel", "v1:list"])
rich_last = st.sampled_from(["", "", "/{n=**}", "/{n=**}:cancel", "/{n=**}.json", "/{x}:cancel"])
rich_templates = st.builds(lambda parts, last: ("/" + "/".join(parts) + last).replace("//", "/"),
                           st.lists(rich_segment, max_size=2), rich_last)
rich_values = st.sampled_from(["users", "USERS", "me", "a", "a.json", "x.json", "x.JSON", "thumb.png", "ab", "abc",
                               "xb", "zz", "q:cancel", ":cancel", "v1:list", "{y}", "{x}.json", "{n=**}",
                               "{n=**}:cancel", "%61", ".json"])


def _shape_part(part: str) -> str:
    match = _TEMPLATE_SEGMENT.fullmatch(part)
    return part if match is None else f"{match.group(1)}{{{'**' if match.group(2) else ''}}}{match.group(3)}"


def shape(template: str, case_insensitive: bool = False) -> str:
    """The template with parameter names dropped: two templates of one shape match the same paths."""
    return "/".join(_shape_part(p) for p in _lower(template, case_insensitive).split("/"))


@settings(max_examples=800, deadline=None)
@given(template_sets, st.lists(st.sampled_from(STATICS + ["zz", "%61", "%7Bx%7D", "{y}"]), max_size=4), st.booleans())
def test_trie_agrees_with_reference_match(templates, path_segments, strip):
    by_shape: dict[str, str] = {}
    for template in templates:
        by_shape.setdefault(shape(template), template)
    trie: PathTrie[str] = PathTrie()
    for template in by_shape.values():
        assert trie.add(template_segments(template), "GET", template) is None
    target = "/" + "/".join(path_segments)
    segments = engine_split(target, strip)
    assert segments == reference_split(target, strip)
    if segments is None:
        return
    found = trie.find(segments)
    expected = reference_match(list(by_shape.values()), segments)
    assert (found["GET"] if found else None) == expected, (templates, target)


@settings(max_examples=800, deadline=None)
@given(template_sets, targets())
def test_trie_agrees_with_reference_match_on_tricky_paths(templates, target):
    by_shape = {shape(t): t for t in templates}
    trie: PathTrie[str] = PathTrie()
    for template in by_shape.values():
        trie.add(template_segments(template), "GET", template)
    segments = engine_split(target)
    if segments is None:
        return
    found = trie.find(segments)
    assert (found["GET"] if found else None) == reference_match(list(by_shape.values()), segments), target


def _rich_trie(templates: list[str], case_insensitive: bool) -> tuple[PathTrie[str], list[str]] | None:
    """The trie of `templates` (one per shape), or None when the reference calls the set ambiguous,
    in which case the trie must refuse it too."""
    by_shape: dict[str, str] = {}
    for template in templates:
        by_shape.setdefault(shape(template, case_insensitive), template)
    kept = list(by_shape.values())
    ambiguous = any(reference_ambiguous(a, b, case_insensitive) for a in kept for b in kept if a != b)
    trie: PathTrie[str] = PathTrie(case_insensitive)
    try:
        for template in kept:
            assert trie.add(template_segments(template), "GET", template) is None
    except AmbiguousTemplates:
        assert ambiguous, kept
        return None
    assert not ambiguous, kept
    return trie, kept


@st.composite
def rich_paths(draw, templates: list[str]) -> str:  # type: ignore[no-untyped-def]
    """A path made from one of `templates` (each parameter filled with a short value), or from the pool."""
    if draw(st.booleans()):
        return "/" + "/".join(draw(st.lists(rich_values, max_size=3)))
    filled = []
    for part in draw(st.sampled_from(templates))[1:].split("/"):
        match = _TEMPLATE_SEGMENT.fullmatch(part)
        if match is None:
            filled.append(draw(st.sampled_from([part, part.upper(), part.lower()])))
            continue
        value = draw(st.sampled_from(["c", "b", "bc", "x.json", "v1", ":cancel", "p/q", "p/q.json"]))
        filled.append(match.group(1) + (value if match.group(2) else value.replace("/", "")) + match.group(3))
    return "/" + "/".join(filled) if filled != [""] else "/"


@settings(max_examples=1500, deadline=None)
@given(st.lists(rich_templates, min_size=1, max_size=10), st.booleans(), st.booleans(), st.data())
def test_rich_templates_agree_with_reference_match(templates, case_insensitive, strip, data):
    built = _rich_trie(templates, case_insensitive)
    if built is None:
        return
    trie, kept = built
    target = data.draw(rich_paths(kept)) + data.draw(st.sampled_from(["", "/"]))
    segments = engine_split(target, strip)
    assert segments == reference_split(target, strip)
    if segments is None:
        return
    found = trie.find(segments)
    expected = reference_match(kept, segments, case_insensitive)
    assert (found["GET"] if found else None) == expected, (kept, target)


@settings(max_examples=500, deadline=None)
@given(st.lists(rich_templates, min_size=1, max_size=8), st.booleans())
def test_every_rich_template_matches_a_concrete_path_of_itself(templates, case_insensitive):
    built = _rich_trie(templates, case_insensitive)
    if built is None:
        return
    trie, kept = built
    for template in kept:
        concrete = re.sub(r"\{[a-z]+=\*\*\}", "p/q", re.sub(r"\{[a-z]+\}", "v", template))
        found = trie.find(split_path(concrete))
        assert found is not None, (kept, template)
        assert found["GET"] == reference_match(kept, split_path(concrete), case_insensitive), (kept, template)
