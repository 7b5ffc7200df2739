"""`scopesvc catalog import openapi` on crafted documents: each rule of docs/import.md, one by one."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scopesvc.catalog import files as catalog_files
from scopesvc.cli import main

OAUTH3 = {"type": "oauth2", "flows": {"authorizationCode": {
    "authorizationUrl": "https://auth.example.com/authorize", "tokenUrl": "https://auth.example.com/token",
    "scopes": {"a": "scope a", "b": "scope b", "c": "scope c"}}}}


def oas3(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"openapi": "3.0.3", "info": {"title": "Test API", "version": "7"},
            "servers": [{"url": "https://api.example.com/v1"}],
            "components": {"securitySchemes": {"oauth": copy.deepcopy(OAUTH3), "key": {"type": "apiKey", "in": "header", "name": "K"},
                                               "oidc": {"type": "openIdConnect",
                                                        "openIdConnectUrl": "https://x/.well-known"}}},
            "paths": paths, **extra}


def run(tmp_path: Path, document: dict[str, Any], *options: str, suffix: str = ".yaml") -> tuple[int, dict, str]:
    spec = tmp_path / f"spec{suffix}"
    spec.write_text(json.dumps(document) if suffix == ".json" else yaml.safe_dump(document, sort_keys=False))
    out = tmp_path / "catalog.yaml"
    report = tmp_path / "report.json"
    code = main(["catalog", "import", "openapi", str(spec), "-o", str(out), "--json", *options])
    return code, out.read_text() if out.exists() else "", str(report)


def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str], document: dict[str, Any], *options: str,
             suffix: str = ".yaml") -> tuple[dict[str, dict[str, Any]], dict[str, Any], str]:
    code, catalog, _ = run(tmp_path, document, *options, suffix=suffix)
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    catalog_files.load_file(tmp_path / "catalog.yaml")  # what was written loads
    return {f"{op['method']} {op['path']}": op for op in report["operations"]}, report, catalog


def test_the_specification_semantics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = oas3({
        "/root": {"get": {}},
        "/open": {"get": {"security": []}},
        "/either": {"get": {"security": [{"oauth": ["a"]}, {"oauth": ["b", "c"]}]}},
        "/key-only": {"get": {"security": [{"key": []}]}},
        "/key-or-a": {"get": {"security": [{"key": []}, {"oauth": ["a"]}]}},
        "/key-and-a": {"get": {"security": [{"key": [], "oauth": ["a"]}]}},
        "/token": {"get": {"security": [{"oauth": []}]}},
        "/anonymous-too": {"get": {"security": [{"oauth": ["a"]}, {}]}},
        "/united": {"get": {"security": [{"oauth": ["a"], "oidc": ["openid"]}]}},
        "/superset": {"get": {"security": [{"oauth": ["a", "b"]}, {"oauth": ["a"]}]}},
        "/undeclared": {"post": {"security": [{"oauth": ["zzz"]}]}},
        "/one-string": {"get": {"security": [{"oauth": "c"}]}},
    }, security=[{"oauth": ["b"]}])
    ops, report, _ = imported(tmp_path, capsys, document)
    assert report["base_path"] == "/v1"
    expect = {
        "GET /root": (False, [["b"]]), "GET /open": (True, []), "GET /either": (False, [["a"], ["b", "c"]]),
        "GET /key-only": (False, [[]]), "GET /key-or-a": (False, [["a"]]), "GET /key-and-a": (False, [["a"]]),
        "GET /token": (False, [[]]), "GET /anonymous-too": (True, []), "GET /united": (False, [["a", "openid"]]),
        "GET /superset": (False, [["a"]]), "POST /undeclared": (False, [["zzz"]]), "GET /one-string": (False, [["c"]]),
    }
    assert {k: (op["public"], op["any_of"]) for k, op in ops.items()} == expect
    assert ops["GET /root"]["source"] == "root security"
    assert ops["GET /root"]["template"] == "/v1/root"
    assert any("dropped" in n for n in ops["GET /key-only"]["notes"])
    assert any("no OAuth2 alternative" in n for n in ops["GET /key-only"]["notes"])
    assert any("dropped" in n for n in ops["GET /key-or-a"]["notes"])
    assert any("not checked" in n for n in ops["GET /key-and-a"]["notes"])
    assert set(report["undeclared_scopes"]) == {"zzz", "openid"}
    assert {op["outcome"] for op in ops.values()} == {"imported"}
    endpoints = {e["path"]: e for e in yaml.safe_load((tmp_path / "catalog.yaml").read_text())["endpoints"]}
    assert endpoints["/v1/open"]["public"] is True and endpoints["/v1/either"]["any_of"] == [["a"], ["b", "c"]]
    assert endpoints["/v1/token"]["scopes"] == []


def test_scopes_descriptions_no_implications_and_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = oas3({"/x": {"get": {"security": [{"oauth": ["a"]}]}}})
    document["components"]["securitySchemes"]["oauth"]["flows"]["authorizationCode"]["scopes"] = {
        "x:write": "write x", "x:read": "read x", "a": "scope a"}
    _, _, text = imported(tmp_path, capsys, document)
    catalog = yaml.safe_load(text)
    assert catalog["scopes"][0] == {"name": "x:write", "description": "write x"}
    assert catalog["hierarchy"] == {"write_implies_read": False}
    assert catalog["paths"]["head_as_get"] is False
    assert catalog["oauth"] == {"authorize_url": "https://auth.example.com/authorize"}
    assert catalog["name"] == "test-api" and catalog["revision"] == "7"
    loaded = catalog_files.load_file(tmp_path / "catalog.yaml")
    assert loaded.universe.implied_by("x:write") == []
    _, _, text = imported(tmp_path, capsys, document, "--write-implies-read", "--name", "mine",
                          "--authorize-url", "https://other.example/auth", "--error-title", "Nope")
    catalog = yaml.safe_load(text)
    assert catalog["hierarchy"] == {"write_implies_read": True} and catalog["name"] == "mine"
    assert catalog["oauth"]["authorize_url"] == "https://other.example/auth"
    assert catalog["errors"]["insufficient_scope"]["title"] == "Nope"


def test_swagger2_base_path_refs_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = {
        "swagger": "2.0", "info": {"title": "Old", "version": "1"}, "basePath": "/api/",
        "securityDefinitions": {"o": {"type": "oauth2", "flow": "accessCode", "authorizationUrl": "https://a/x",
                                      "tokenUrl": "https://a/t", "scopes": {"s:1": "one", "s:2": "two"}},
                                "basic": {"type": "basic"}},
        "paths": {"/things/{thing-id}": {"get": {"security": [{"o": ["s:1"]}]},
                                         "delete": {"security": [{"basic": []}]}},
                  "/things/": {"post": {"security": [{"o": ["s:1", "s:2"]}]}}},
    }
    ops, report, _ = imported(tmp_path, capsys, document, suffix=".json")
    assert report["kind"] == "Swagger 2.0" and report["base_path"] == "/api"
    assert ops["GET /things/{thing-id}"]["template"] == "/api/things/{thing_id}"
    assert ops["POST /things/"]["template"] == "/api/things"
    assert ops["POST /things/"]["any_of"] == [["s:1", "s:2"]]
    assert ops["DELETE /things/{thing-id}"]["any_of"] == [[]]
    ops, report, _ = imported(tmp_path, capsys, document, "--base-path", "/", suffix=".json")
    assert ops["GET /things/{thing-id}"]["template"] == "/things/{thing_id}"


def test_local_refs_are_followed_and_others_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = oas3({"/r": {"$ref": "#/components/pathItems/R"}, "/far": {"$ref": "other.yaml#/x"},
                     "/elsewhere": {"servers": [{"url": "https://{host}/{ver}", "variables": {
                         "host": {"default": "h"}, "ver": {"default": "v9"}}}], "get": {"security": [{"o": "a"}]}}})
    document["openapi"] = "3.1.0"
    document["components"]["pathItems"] = {"R": {"get": {"security": [{"ref": ["a"]}]}}}
    document["components"]["securitySchemes"]["ref"] = {"$ref": "#/components/securitySchemes/oauth"}
    ops, _, _ = imported(tmp_path, capsys, document)
    assert ops["GET /r"]["any_of"] == [["a"]]
    assert ops["GET /elsewhere"]["template"] == "/v9/elsewhere"  # the path item's own server
    assert ops["GET /elsewhere"]["any_of"] == [[]]  # scheme 'o' is not declared: no scopes
    assert ops["* /far"]["outcome"] == "left out" and "local" in ops["* /far"]["notes"][0]


def test_ambiguous_operations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = oas3({
        "/files/{FileID}": {"get": {"security": [{"oauth": ["a"]}]}, "put": {"security": [{"oauth": ["a"]}]}},
        "/files/{FileName}": {"get": {"security": [{"oauth": ["a"]}]}, "put": {"security": [{"oauth": ["b"]}]}},
    })
    ops, report, text = imported(tmp_path, capsys, document)
    assert ops["GET /files/{FileID}"]["outcome"] == "imported"
    assert ops["GET /files/{FileName}"]["outcome"] == "merged"
    assert ops["PUT /files/{FileID}"]["outcome"] == ops["PUT /files/{FileName}"]["outcome"] == "left out"
    assert "different requirements" in ops["PUT /files/{FileName}"]["notes"][0]
    assert report["counts"] == {"operations": 4, "imported": 1, "merged": 1, "left_out": 2, "endpoints": 1, "scopes": 3}
    assert [e["path"] for e in yaml.safe_load(text)["endpoints"]] == ["/v1/files/{FileID}"]


def test_templates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = oas3({"/v1/{+name}:cancel": {"post": {"security": [{"oauth": ["a"]}]}},
                     "/t/{id}/thumbnail.{extension}": {"get": {"security": [{"oauth": ["a"]}]}},
                     "/q{?page}": {"get": {"security": [{"oauth": ["a"]}]}}}, servers=[{"url": "/"}])
    ops, _, _ = imported(tmp_path, capsys, document)
    assert ops["POST /v1/{+name}:cancel"]["template"] == "/v1/{name=**}:cancel"
    assert ops["GET /t/{id}/thumbnail.{extension}"]["template"] == "/t/{id}/thumbnail.{extension}"
    assert ops["POST /v1/{+name}:cancel"]["outcome"] == ops["GET /t/{id}/thumbnail.{extension}"]["outcome"] == "imported"
    assert ops["GET /q{?page}"]["outcome"] == "left out"
    assert "cannot be expressed" in ops["GET /q{?page}"]["notes"][0]


def test_options_for_documents_that_bend_the_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = oas3({
        "/xero": {"get": {"security": [{"oauth": ["a", "b"]}]}},
        "/slack": {"get": {"security": [{"oauth": ["none"]}]}},
        "/pd": {"get": {"security": [{"key": []}], "x-pd-requires-scope": "c"}},
        "/cal": {"get": {"security": [{"key": []}], "description": "Hi\n> #### Required scopes: `b`, `c`"}},
    })
    document["components"]["securitySchemes"]["oauth"]["flows"]["authorizationCode"]["scopes"]["none"] = "no scope"
    ops, report, text = imported(tmp_path, capsys, document, "--list-means", "any-of", "--ignore-scope", "none",
                                 "--scopes-extension", "x-pd-requires-scope",
                                 "--scopes-from-description", r"Required scopes:(?P<scopes>.*)")
    assert ops["GET /xero"]["any_of"] == [["a"], ["b"]]
    assert ops["GET /slack"]["any_of"] == [[]] and report["ignored_scopes"] == {"none": 1}
    assert ops["GET /pd"]["any_of"] == [["c"]] and ops["GET /pd"]["source"] == "x-pd-requires-scope"
    assert ops["GET /cal"]["any_of"] == [["b"], ["c"]] and ops["GET /cal"]["source"] == "description"
    assert "none" not in [s["name"] for s in yaml.safe_load(text)["scopes"]]
    ops, _, _ = imported(tmp_path, capsys, document)
    assert ops["GET /xero"]["any_of"] == [["a", "b"]]
    assert ops["GET /slack"]["any_of"] == [["none"]]


def test_human_report_names_every_operation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(oas3({"/a": {"get": {"security": [{"oauth": ["a"]}]}},
                                         "/b": {"get": {"security": [{"key": []}]}}})))
    assert main(["catalog", "import", "openapi", str(spec)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("# Imported by") and "format: scopesvc.catalog/v1" in out
    assert "GET /a -> /v1/a: [a]" in err and "GET /b -> /v1/b: a token, no scope" in err
    assert "dropped: it carries no scopes" in err


@pytest.mark.parametrize(("text", "message"), [
    ("openapi: 2.5\npaths: {}\n", "not an OpenAPI 3.x or Swagger 2.0 document"),
    ("swagger: '2.0'\npaths: [1]\n", "'paths' must be a mapping"),
    ("openapi: 3.0.0\npaths: {a: {\n", "YAML syntax error"),
    ("openapi: 3.0.0\npaths: {/a: {get: {}}}\n", "declares and uses no OAuth2 scope"),
])
def test_bad_documents_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    assert main(["catalog", "import", "openapi", str(spec), "-o", str(tmp_path / "out.yaml")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.yaml").exists()
    assert main(["catalog", "import", "openapi", str(tmp_path / "missing.yaml")]) == 2
    assert main(["catalog", "import", "openapi", str(spec), "--scopes-from-description", "("]) == 2
