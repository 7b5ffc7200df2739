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

from scopesvc.policy.paths import MAX_PATH_LENGTH, MalformedPath, PathTrie, split_path, template_segments

# -- the reference ------------------------------------------------------------------------

_ALLOWED_RAW = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@%")
_HEX = set("0123456789abcdefABCDEF")
_PARAM = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


def _is_control(ch: str) -> bool:
    return ord(ch) <= 0x20 or 0x7F <= ord(ch) <= 0x9F


def _ref_segment(raw: str) -> str | None:
    """A decoded segment, or None when the segment makes the path malformed."""
    if raw in ("", ".", ".."):
        return None
    if _PARAM.fullmatch(raw):
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


def reference_match(templates: list[str], segments: list[str]) -> str | None:
    """The most specific template matching `segments`: a static segment beats a parameter at the
    first position where two matching templates differ."""
    matching = []
    for template in templates:
        parts = [] if template == "/" else template[1:].split("/")
        pattern = "/".join("[^/]+" if _PARAM.fullmatch(p) else re.escape(p) for p in parts)
        if "" not in segments and re.fullmatch(pattern, "/".join(segments)) and len(parts) == len(segments):
            matching.append((tuple(0 if _PARAM.fullmatch(p) else 1 for p in parts), template))
    return max(matching)[1] if matching else None


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


def shape(template: str) -> str:
    return _PARAM.sub("{}", template)


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
