"""The exporters' restatement of the engine's rules, checked against the engine itself in Python.

These are the parts an exported proxy decides with (path grammar, template priority, scope-claim
words, the `iat` cut-over), compared on generated input; tests/e2e/test_export_envoy.py then
checks that real Envoy running the exported configuration answers as the engine does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from scopesvc.catalog import files as catalog_files
from scopesvc.export import ExportRefused, envoy, model, regex
from scopesvc.export.model import iat_bounds, nodes, outranked_by, unsupported
from scopesvc.gateway.attributes import GatewayConfig, token_from_payload
from scopesvc.policy import Engine, RequestError, compile_catalog
from scopesvc.policy.paths import MalformedPath, parameter_parts, split_path

from .test_properties_decisions import catalogs, requests
from .test_properties_paths import targets

WELLFORMED = re.compile(regex.WELLFORMED)
TOO_LONG = re.compile(regex.TOO_LONG)


def exportable(doc: dict, alternatives: bool = False, istio: bool = False) -> dict:
    """A generated catalog cut to what an exporter encodes: unless `alternatives` (Envoy encodes them)
    one scope set and not public; with `istio`, case-sensitive paths and no literal text around a
    parameter or custom verb, which Istio cannot express (the rest is refused, which
    test_what_the_exporters_do_not_encode_is_refused and tests/test_export_istio.py check)."""
    doc = dict(doc, paths=dict(doc.get("paths", {}), **({"case_insensitive": False} if istio else {})))
    endpoints = []
    for entry in doc["endpoints"]:
        if istio and any(("{" in s or "}" in s) and not re.fullmatch(r"\{[A-Za-z_][A-Za-z0-9_]*(=\*\*)?\}", s)
                         for s in entry["path"].split("/")):
            continue
        if not alternatives:
            entry = {k: v for k, v in entry.items() if k not in ("any_of", "public", "scopes")}
            entry["scopes"] = list(next(iter(doc_entry_sets(entry, doc))))
        endpoints.append(entry)
    doc["endpoints"] = endpoints or [{"method": "GET", "path": "/", "scopes": []}]
    return doc


def doc_entry_sets(entry: dict, doc: dict) -> list:
    original = next(e for e in doc["endpoints"] if e["method"] == entry["method"] and e["path"] == entry["path"])
    if original.get("public"):
        return [[]]
    return original.get("any_of") or [original.get("scopes", [])]


def exported_malformed(path: str) -> bool:
    return not WELLFORMED.fullmatch(path) or bool(TOO_LONG.fullmatch(path))


def engine_malformed(path: str) -> bool:
    try:
        split_path(path)
    except MalformedPath:
        return True
    return False


HARD_PATHS = [
    "/", "//", "/a/", "/a//b", "/a/./b", "/a/../b", "/%2e", "/%2E%2e", "/.a", "/..a", "/...", "/%2e%2e%2e",
    "/a%2Fb", "/a%2fb", "/a%5Cb", "/%75sers", "/%zz", "/%4", "/%C3%A9", "/%c3%a9", "/%C3", "/%C2%85", "/%C2%A0",
    "/%ED%A0%80", "/%EF%BF%BF", "/%F4%8F%BF%BF", "/%F4%90%80%80", "/%E0%80%80", "/%C0%AF", "/a;b", "/a\\b",
    "/{uuid}", "/{1x}", "/{a}b", "/a?b#c", "/a#b", "/a b", "*", "https://h/a", "/a?x y", "/%25", "/%2525",
    "/%3F", "/%3f", "/%23", "/%20", "/%7F", "/%7E", "/~", "/a/%2e%2e/", "/%2e.", "/.%2e/x", "/a\x00", "/é",
    "/" + "a" * 8191, "/" + "a" * 8192, "/a?" + "q" * 9000, "",
]


def test_path_grammar_on_hard_cases():
    for path in HARD_PATHS:
        assert exported_malformed(path) == engine_malformed(path), path


@settings(max_examples=1000, deadline=None)
@given(targets())
def test_path_grammar_agrees_with_the_engine(path):
    assert exported_malformed(path) == engine_malformed(path), path


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30).map(lambda t: "/" + t))
def test_path_grammar_agrees_on_any_text(path):
    assert exported_malformed(path) == engine_malformed(path), path


def classify(catalog, path: str) -> str:
    """What the exported classifier names: the first policy, by name, whose pattern matches."""
    if exported_malformed(path):
        return envoy.MALFORMED
    for node in nodes(catalog):  # already in name order
        if re.fullmatch(regex.node_pattern(node.segments, catalog.strip_trailing_slash, catalog.case_insensitive),
                        path):
            return node.name
    return ""


def engine_node(catalog, path: str) -> str:
    try:
        methods = catalog.trie.find(split_path(path, catalog.strip_trailing_slash))
    except MalformedPath:
        return envoy.MALFORMED
    if methods is None:
        return ""
    endpoint = next(iter(methods.values()))
    return next(n.name for n in nodes(catalog) if endpoint in n.endpoints.values())


def test_node_names_sort_in_priority_order():
    catalog = catalog_files.load("")
    names = [n.name for n in nodes(catalog)]
    assert names == sorted(names) and envoy.MALFORMED < names[0]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_classification_picks_the_engines_template(data):
    doc = exportable(data.draw(catalogs()))
    catalog = compile_catalog(doc)
    for _ in range(10):
        _, path = data.draw(requests(doc))
        assert classify(catalog, path) == engine_node(catalog, path), (path, yaml.safe_dump(doc))


def test_classification_of_the_embedded_catalog():
    catalog = catalog_files.load("")
    for endpoint in catalog.endpoints:
        path = re.sub(r"\{[^}]+\}", "x1", endpoint.template)
        for variant in (path, path + "/", path + "?a=b", endpoint.template, path.replace("e", "%65", 1)):
            assert classify(catalog, variant) == engine_node(catalog, variant), variant


# Parameter values: plain, percent-encoded, empty (a parameter needs a character), an encoded
# slash (malformed), one that spells a suffix, template text as a value; a REST one spans segments.
VALUES = ["1", "", "x.json", "%41b", "a%2Fb", "{y}", "Q", ":cancel", "%3Acancel", "..", "b%2ejson", "%C3%A9"]


@st.composite
def spelled(draw, text: str) -> str:  # type: ignore[no-untyped-def]
    """`text` with each character as is, in the other case, or percent-encoded in either hex case."""
    out = []
    for c in text:
        c = draw(st.sampled_from([c, c, c.swapcase()]))
        out.append(draw(st.sampled_from([c, c, f"%{ord(c):02X}", f"%{ord(c):02x}"])))
    return "".join(out)


@st.composite
def spelled_paths(draw, doc: dict) -> str:  # type: ignore[no-untyped-def]
    """A path of one of `doc`'s templates, its literal text spelled in any case and encoding."""
    template = draw(st.sampled_from([e["path"] for e in doc["endpoints"]]))
    out = []
    for segment in template.split("/")[1:] if template != "/" else []:
        parts = parameter_parts(segment)
        if parts is None:
            out.append(draw(spelled(segment)))
            continue
        prefix, rest, suffix = parts
        value = draw(st.sampled_from(VALUES + (["p/q", "p/q.json", "p/Q:cancel"] if rest else [])))
        out.append(draw(spelled(prefix)) + value + draw(spelled(suffix)))
    return "/" + "/".join(out) + draw(st.sampled_from(["", "", "/", "?q=1", "//", "/?a"]))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_classification_of_rich_templates(data):
    """Literal text around parameters, `{x=**}` with custom verbs, case-insensitive paths, both
    trailing-slash settings: the first exported node pattern that matches is the trie's answer."""
    doc = data.draw(catalogs())
    catalog = compile_catalog(doc)
    for _ in range(15):
        path = data.draw(st.one_of(spelled_paths(doc), requests(doc).map(lambda r: r[1])))
        assert classify(catalog, path) == engine_node(catalog, path), (path, yaml.safe_dump(doc))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_overlapping_shapes_are_known_to_overlap(data):
    """A path two node patterns both match: `Node.overlaps` says so (istio.py excludes by it)."""
    doc = data.draw(catalogs())
    catalog = compile_catalog(doc)
    ordered = nodes(catalog)
    patterns = [re.compile(regex.node_pattern(n.segments, catalog.strip_trailing_slash, catalog.case_insensitive))
                for n in ordered]
    for _ in range(15):
        path = data.draw(spelled_paths(doc))
        if exported_malformed(path):
            continue
        matching = [n for n, p in zip(ordered, patterns) if p.fullmatch(path)]
        for a in matching:
            assert all(a.overlaps(b) and b.overlaps(a) for b in matching), (path, yaml.safe_dump(doc))
            outranking = outranked_by(ordered, a)
            assert all(b in outranking for b in matching if b.name < a.name), (path, yaml.safe_dump(doc))


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ("/a/{x}", "/a/b", True), ("/a/{x}", "/a/b/c", False), ("/{x}.json", "/a.json", True),
    ("/{x}.json", "/.json", False), ("/{x}.json", "/a.yaml", False), ("/a{x}", "/{x}bc", True),
    ("/ab{x}", "/ac{x}", False), ("/a{x}c", "/ab{x}c", True), ("/a{x}c", "/ab{x}d", False), ("/{x=**}", "/a/b/c", True), ("/{x=**}", "/", False),
    ("/a/{x=**}", "/a", False), ("/a/{x=**}:run", "/a/b/c", False), ("/a/{x=**}:run", "/a/b/c:run", True),
    ("/a/{x=**}:run", "/a/b/:run", False), ("/a/{x=**}:run", "/a/{y}/{z}", True),
    ("/a/{x=**}:run", "/a/{y}.json", False), ("/a/{x=**}:run", "/a/{y}/{z=**}un", True),
    ("/a/{x=**}:run", "/a/{y=**}:go", False), ("/a/{x=**}:run", "/b/{y=**}", False),
    ("/Users/{x}", "/users/{x}", False),
])
def test_overlaps(a, b, overlap):
    catalog = compile_catalog({"format": "scopesvc.catalog/v1", "name": "t", "scopes": [{"name": "s"}],
                               "endpoints": [{"method": "GET", "path": a, "scopes": []},
                                             {"method": "POST", "path": b, "scopes": []}]})
    x, y = (next(n for n in nodes(catalog) if m in n.endpoints) for m in ("GET", "POST"))
    assert x.overlaps(y) == y.overlaps(x) == overlap


def test_case_insensitive_shapes_merge():
    catalog = compile_catalog({"format": "scopesvc.catalog/v1", "name": "t", "scopes": [{"name": "s"}],
                               "paths": {"case_insensitive": True},
                               "endpoints": [{"method": "GET", "path": "/Users/{id}.JSON", "scopes": []},
                                             {"method": "POST", "path": "/users/{x}.json", "scopes": []}]})
    [node] = nodes(catalog)
    assert set(node.endpoints) == {"GET", "POST"}
    for path in ("/USERS/1.json", "/%55sers/1.J%53ON", "/users/{x}.json/", "/uSeRs/a%2e.%6As%4fn", "/users/1%2Ejson"):
        assert classify(catalog, path) == node.name, path
    for path in ("/users/.json", "/users/1.jso", "/user/1.json", "/users/%41%2Fjson", "/users/1.json%41"):
        assert classify(catalog, path) != node.name, path


def test_literal_text_after_a_parameter_starts_at_a_character():
    """`%41` is one character: a suffix `1x` does not match the end of `a%41x` (which is `aAx`)."""
    catalog = compile_catalog({"format": "scopesvc.catalog/v1", "name": "t", "scopes": [{"name": "s"}],
                               "endpoints": [{"method": "GET", "path": "/f/{x}1x", "scopes": []},
                                             {"method": "GET", "path": "/f/{x=**}e", "scopes": []}]})
    for path in ("/f/a%41x", "/f/a%41x/b%4e", "/f/a%31x", "/f/a1x", "/f/b/%4e", "/f/b/a%45", "/f/%45"):
        assert classify(catalog, path) == engine_node(catalog, path), path


words = st.lists(st.sampled_from(["a:read", "a:write", "b", "x.y", "a", "read", "a:read2", "(", "a|b"]), max_size=4)
separators = st.sampled_from([" ", "  ", "\t", "\n", "\u2003", "\x1c", "\xa0", ",", "\u200b"])


@settings(max_examples=1000, deadline=None)
@given(words, separators, st.sampled_from(["", " ", "\u3000"]), st.lists(st.sampled_from(
    ["a:read", "b", "(", "a|b", "x.y"]), min_size=1, max_size=2, unique=True))
def test_scope_words_split_as_the_adapter_splits(parts, separator, edge, wanted):
    claim = edge + separator.join(parts) + edge
    scopes = token_from_payload({"scope": claim}, GatewayConfig()).scopes
    assert bool(re.fullmatch(regex.has_word(wanted), claim)) == any(w in scopes for w in wanted), claim


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.integers(min_value=-2**63, max_value=2**64), st.floats(allow_nan=False, allow_infinity=False)),
       st.sampled_from(["2026-03-03", "2026-03-03T10:11:12.500001Z", None]))
def test_iat_bounds_match_the_adapters_reading(iat, cutover):
    catalog = compile_catalog({"format": "scopesvc.catalog/v1", "name": "t", "scopes": [{"name": "s"}],
                               "endpoints": [{"method": "GET", "path": "/", "scopes": []}],
                               **({"oauth": {"scopes_introduced_at": cutover}} if cutover else {})})
    engine = Engine(catalog)
    bounds = iat_bounds(catalog.scopes_introduced_at)
    try:
        token = token_from_payload({"iat": iat}, GatewayConfig())
    except RequestError:
        assert not bounds.valid_start <= iat < bounds.valid_end
        return
    assert bounds.valid_start <= iat < bounds.valid_end
    legacy = engine.token_format(token) == 2
    assert legacy == (bounds.legacy_end is not None and iat < bounds.legacy_end), (iat, cutover)


def test_iat_bound_is_exact_at_the_cutover():
    cutover = dt.datetime(2026, 3, 3, tzinfo=dt.UTC)
    # The adapter rounds `iat` to the microsecond: half a microsecond before the cut-over is not legacy.
    end = iat_bounds(cutover).legacy_end
    assert end is not None and cutover.timestamp() - 1e-6 < end < cutover.timestamp()


def test_what_the_exporters_do_not_encode_is_refused(monkeypatch: pytest.MonkeyPatch):
    """A catalog setting the exporters do not know is refused while set, never dropped."""
    catalog = catalog_files.load(str(catalog_files_example()))
    assert unsupported(catalog) == []
    odd = dataclasses.replace(catalog, case_insensitive=True)
    assert unsupported(odd) == []
    monkeypatch.setattr(model, "_CATALOG_FIELDS", model._CATALOG_FIELDS - {"case_insensitive"})  # as if new
    reasons = unsupported(odd)
    assert len(reasons) == 1 and "case_insensitive" in reasons[0]
    with pytest.raises(ExportRefused):
        envoy.http_filters(odd, envoy.JwtOptions(issuer="i", jwks_file="/j"))
    assert unsupported(catalog) == []


def catalog_files_example() -> Path:
    return Path(__file__).resolve().parents[1] / "scopesvc" / "catalog" / "builtin" / "example-tasks.yaml"
