"""Catalog validation: every kind of mistake is reported with where and why; nothing half-loads."""

from __future__ import annotations

import codecs
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scopesvc.catalog import files as catalog_files
from scopesvc.policy import CatalogError, Engine, Token, compile_catalog

MINIMAL = {
    "format": "scopesvc.catalog/v1",
    "name": "mini",
    "scopes": [{"name": "a:read"}, {"name": "a:write"}, {"name": "b:read"}],
    "endpoints": [
        {"method": "GET", "path": "/a/{id}", "scopes": ["a:read"]},
        {"method": "PUT", "path": "/a/{id}", "scopes": ["a:write"]},
    ],
}


def broken(**changes) -> dict:  # type: ignore[no-untyped-def]
    data = copy.deepcopy(MINIMAL)
    data.update(changes)
    return data


def issues_of(data) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(CatalogError) as info:
        compile_catalog(data, source="test.yaml")
    assert str(info.value).startswith("test.yaml: invalid catalog")
    return list(info.value.issues)


def test_minimal_catalog_compiles_with_write_implies_read():
    engine = Engine(compile_catalog(MINIMAL))
    assert engine.check(Token(("a:write",)), "GET", "/a/1").allowed
    assert not engine.check(Token(("a:read",)), "PUT", "/a/1").allowed


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"format": "v0"}, "format: must be 'scopesvc.catalog/v1'"),
        ({"endpoints": [{"method": "GET", "path": "/x", "scopes": ["c:read"]}]}, "endpoints[0] (GET /x): unknown scope 'c:read'"),
        ({"endpoints": [{"method": "GET", "path": "/x", "scopes": ["a:read"]}, {"method": "GET", "path": "/x", "scopes": ["a:write"]}]},
         "endpoints[1] (GET /x): duplicate endpoint GET /x"),
        ({"endpoints": [{"method": "GET", "path": "/x/{a}", "scopes": []}, {"method": "GET", "path": "/x/{b}", "scopes": []}]},
         "endpoints[1] (GET /x/{b}): conflicts with GET /x/{a}"),
        ({"endpoints": [{"method": "GET", "path": "x", "scopes": []}]}, "bad path template: template must start with '/'"),
        ({"endpoints": [{"method": "GET", "path": "/x/{a}.{b}", "scopes": []}]}, "at most one parameter"),
        ({"endpoints": [{"method": "GET", "path": "/x/../y", "scopes": []}]}, "dot segment"),
        ({"endpoints": [{"method": "GET", "path": "/x//y", "scopes": []}]}, "empty path segment"),
        ({"endpoints": [{"method": "get", "path": "/x", "scopes": []}]}, "bad method 'get'"),
        ({"endpoints": [{"method": "GET", "path": "/x"}]}, "'scopes' is required"),
        ({"endpoints": [{"method": "GET", "path": "/x", "scopes": "a:read"}]}, "'scopes' must be a list of strings"),
        ({"endpoints": [{"method": "GET", "path": "/x", "scopes": [], "colour": "red"}]}, "unknown field 'colour'"),
        ({"scopes": [{"name": "a:read", "implies": ["b:read"]}, {"name": "b:read", "implies": ["a:read"]}]},
         "implication cycle: a:read -> b:read -> a:read"),
        ({"scopes": [{"name": "a:read"}, {"name": "a:read"}]}, "duplicate scope 'a:read'"),
        ({"scopes": [{"name": "has space"}]}, "a scope name is 1-200 printable ASCII"),
        ({"scopes": []}, "at least one scope is required"),
        ({"oauth": {"scopes_introduced_at": "2026-13-45"}}, "oauth.scopes_introduced_at: bad date '2026-13-45'"),
        ({"oauth": {"authorize_url": "ftp://x"}}, "oauth.authorize_url: must be an http(s) URL"),
        ({"webhooks": {"subscribe_scope": "nope:write", "events": []}}, "webhooks.subscribe_scope: unknown scope 'nope:write'"),
        ({"webhooks": {"subscribe_scope": "a:write", "events": [{"name": "x.y", "scope": "a:read", "subscription_scopes": ["world"]}]}},
         "subscription scope 'world' is not one of"),
        ({"features": [{"name": "f", "requires": ["GET /nope"]}]}, "features[0] (f).requires: no endpoint 'GET /nope'"),
        ({"features": [{"name": "f", "requires": []}]}, "'requires' must list at least one"),
        ({"pseudo_scopes": [{"name": "p:read", "use": ["a:read"]}], "features": [{"name": "f", "requires": ["p:read"]}]},
         "p:read is not a real scope"),
        ({"paths": {"trailing_slash": "maybe"}}, "paths.trailing_slash: must be 'strip' or 'strict'"),
        ({"name": 5}, "'name' must be a string, not int"),
        ({"endpoints": "all of them"}, "endpoints: must be a list, not str"),
        ({"surprise": 1}, "unknown field 'surprise'"),
    ],
)
def test_each_mistake_is_reported_precisely(changes, expected):
    assert any(expected in issue for issue in issues_of(broken(**changes))), issues_of(broken(**changes))


def test_all_problems_are_reported_at_once():
    data = broken(endpoints=[{"method": "GET", "path": "/x", "scopes": ["c:read"]}, {"method": "get", "path": "y"}])
    assert len(issues_of(data)) >= 3


def test_not_a_mapping():
    assert issues_of([1, 2]) == ["test.yaml: catalog: must be a mapping, not list"]


def test_an_unknown_field_does_not_hide_the_problems_after_it():
    data = broken(surprise=1, scopes=[{"name": "a:read", "colour": "red"}, {"name": "a:write"}],
                  endpoints=[{"method": "GET", "path": "/x", "scopes": ["c:read"]}],
                  webhooks={"subscribe_scope": "z:write", "events": []},
                  features=[{"name": "f", "requires": ["GET /nope"]}])
    issues = issues_of(data)
    for expected in ("catalog: unknown field 'surprise'", "scopes[0]: unknown field 'colour'",
                     "endpoints[0] (GET /x): unknown scope 'c:read'", "webhooks.subscribe_scope: unknown scope 'z:write'",
                     "features[0] (f).requires: no endpoint 'GET /nope'"):
        assert any(expected in issue for issue in issues), (expected, issues)


def test_an_implication_cycle_does_not_hide_the_endpoints():
    issues = issues_of(broken(scopes=[{"name": "a:read", "implies": ["b:read"]}, {"name": "b:read", "implies": ["a:read"]}],
                              endpoints=[{"method": "GET", "path": "/x", "scopes": ["c:read"]}]))
    assert any("implication cycle" in issue for issue in issues)
    assert any("unknown scope 'c:read'" in issue for issue in issues)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"endpoints": [{"method": "GET", "path": "/x", "scopes": ["a:raed"]}]}, "unknown scope 'a:raed' (did you mean 'a:read'?)"),
        ({"endpoints": [{"method": "GET", "path": "/x", "scope": ["a:read"]}]}, "unknown field 'scope' (did you mean 'scopes'?)"),
        ({"scopes": [{"name": "a:read", "implies": ["b:raed"]}, {"name": "b:read"}]},
         "unknown scope 'b:raed' (did you mean 'b:read'?)"),
        ({"features": [{"name": "f", "requires": ["a:wrte"]}]}, "(did you mean 'a:write'?)"),
        ({"features": [{"name": "f", "requires": ["PUT /a/{id}/x"]}]}, "(did you mean 'PUT /a/{id}'?)"),
        ({"endponts": []}, "unknown field 'endponts' (did you mean 'endpoints'?)"),
    ],
)
def test_near_misses_get_a_did_you_mean(changes, expected):
    assert any(expected in issue for issue in issues_of(broken(**changes))), issues_of(broken(**changes))


def test_far_misses_list_the_fields_instead():
    issues = issues_of(broken(endpoints=[{"method": "GET", "path": "/x", "scopes": ["zzz"], "colour": "red"}]))
    assert any("unknown scope 'zzz'" in issue and "did you mean" not in issue for issue in issues)
    assert any("unknown field 'colour' (expected one of: method, path, scopes" in issue for issue in issues)


BROKEN_YAML = """\
format: scopesvc.catalog/v1
name: mini
colour: red
scopes:
  - name: a:read
  - name: a:write
    implie: [a:read]
endpoints:
  - method: GET
    path: /a/{id}
    scopes: [a:raed]
  - method: PUT
    path: /a/{id}
    scopes:
      - a:read
      - b:writ
features:
  - name: f
    requires:
      - GET /a/{id}/x
"""


def test_yaml_problems_carry_their_file_and_line(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(BROKEN_YAML)
    with pytest.raises(CatalogError) as info:
        catalog_files.load_file(path)
    lines = {(p.line, p.entry) for p in info.value.problems}
    assert lines == {(3, "catalog"), (7, "scopes[1]"), (11, "endpoints[0] (GET /a/{id})"),
                     (16, "endpoints[1] (PUT /a/{id})"), (20, "features[0] (f).requires")}
    assert all(p.file == str(path) for p in info.value.problems)
    assert f"{path}:16: endpoints[1] (PUT /a/{{id}}): unknown scope 'b:writ'" in str(info.value)


def test_json_problems_say_there_are_no_line_numbers(tmp_path: Path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(yaml.safe_load(BROKEN_YAML), indent=1))
    with pytest.raises(CatalogError) as info:
        catalog_files.load_file(path)
    assert len(info.value.problems) == 5 and all(p.line is None for p in info.value.problems)
    assert "JSON carries no line numbers" in str(info.value)


@pytest.mark.parametrize(
    ("name", "content", "expected", "line"),
    [
        ("syntax.yaml", b"name: x\nscopes: [a, b\nendpoints: []\n", "YAML syntax error at column", 3),
        ("tab.yaml", b"name: x\n\tscopes: []\n", "YAML syntax error", 2),
        ("syntax.json", b'{"name": "x",\n "scopes": [}\n', "JSON syntax error at column 13", 2),
        ("empty.yaml", b"", "the file is empty", None),
        ("blank.json", b"  \n\n", "the file is empty", None),
        ("comments.yaml", b"# nothing here\n", "holds no YAML document", None),
        ("latin1.yaml", b"name: caf\xe9\n", "the file is not UTF-8 text (byte 0xe9 at offset 9", 1),
        ("utf16.yaml", "name: x\n".encode("utf-16"), "the file is UTF-16 text: save it as UTF-8", None),
    ],
)
def test_unreadable_documents_get_a_plain_message(tmp_path: Path, name, content, expected, line):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CatalogError) as info:
        catalog_files.load_file(path)
    (problem,) = info.value.problems
    assert expected in problem.reason and problem.line == line and problem.file == str(path)
    assert "<unicode string>" not in str(info.value) and "codec" not in str(info.value)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path):
    path = tmp_path / "bom.json"
    path.write_bytes(codecs.BOM_UTF8 + json.dumps(MINIMAL).encode())
    assert catalog_files.load_file(path).name == "mini"


def test_files_yaml_json_and_errors(tmp_path: Path):
    as_json = tmp_path / "c.json"
    as_json.write_text(json.dumps(MINIMAL))
    as_yaml = tmp_path / "c.yaml"
    as_yaml.write_text(yaml.safe_dump(MINIMAL))
    assert catalog_files.load_file(as_json).name == catalog_files.load_file(as_yaml).name == "mini"
    assert catalog_files.load_file(as_json).revision.startswith("0+")
    for text, expected in (
        ("{not json", ":1: JSON syntax error at column 2"),
        ("a: [1, 2", ":2: YAML syntax error at column 1"),
        ("a: &x [1]\nb: *x\n", ":2: YAML error at column 4: aliases are not allowed"),
    ):
        bad = tmp_path / ("bad.json" if text.startswith("{") else "bad.yaml")
        bad.write_text(text)
        with pytest.raises(CatalogError) as info:
            catalog_files.load_file(bad)
        assert str(info.value).startswith(f"{bad}: invalid catalog") and f"{bad}{expected}" in str(info.value)
    with pytest.raises(CatalogError, match="cannot read"):
        catalog_files.load_file(tmp_path / "missing.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\x80\x81\x00")
    with pytest.raises(CatalogError, match="not UTF-8"):
        catalog_files.load_file(binary)


def test_example_catalog_for_another_api():
    path = catalog_files.builtin_path("example-tasks.yaml")
    engine = Engine(catalog_files.load_file(path))
    assert engine.catalog.name == "tasks-api"
    # No write->read rule here: tasks.write implies tasks.read only because it says so.
    assert engine.check(Token(("tasks.write",)), "GET", "/v2/tasks/9").allowed
    assert engine.check(Token(("projects.admin",)), "POST", "/v2/tasks/9/comments").allowed
    assert not engine.check(Token(("tasks.read",)), "PATCH", "/v2/tasks/9").allowed
    strict = engine.check(Token(("tasks.read",)), "GET", "/v2/tasks/9/")
    assert not strict.allowed and strict.reason.name == "UNKNOWN_ENDPOINT"
    assert not engine.check(Token(("tasks.read",)), "HEAD", "/v2/tasks/9").allowed
    # No cut-over: an old token is still a scoped token.
    assert engine.token_format(Token((), issued_at=None)).name == "SCOPED"
    assert engine.plan(["task-bot"]).scopes == ("tasks.write", "comments.write", "hooks.manage")
    assert engine.legacy_scopes == ("projects.admin",)


def test_validate_json_reports_every_problem_as_data(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(BROKEN_YAML)
    result = subprocess.run([sys.executable, "-m", "scopesvc", "catalog", "validate", "--json", str(path)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and result.stderr == ""
    report = json.loads(result.stdout)
    assert report["valid"] is False and report["file"] == str(path)
    assert {"file": str(path), "line": 11, "entry": "endpoints[0] (GET /a/{id})",
            "reason": "unknown scope 'a:raed' (did you mean 'a:read'?)"} in report["problems"]
    good = subprocess.run([sys.executable, "-m", "scopesvc", "catalog", "validate", "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert good.returncode == 0 and json.loads(good.stdout)["valid"] is True
