"""`scopesvc catalog diff`: crafted catalog pairs, each change labelled by meaning, not by text."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from scopesvc.cli import main

BASE: dict[str, Any] = {
    "format": "scopesvc.catalog/v1", "name": "t", "oauth": {"scopes_introduced_at": "2026-03-03"},
    "hierarchy": {"write_implies_read": False},
    "scopes": [{"name": n} for n in ("a:read", "a:write", "b:read", "webhooks:write")],
    "endpoints": [
        {"method": "GET", "path": "/a/{id}", "scopes": ["a:read"]},
        {"method": "POST", "path": "/a", "scopes": ["a:write"]},
        {"method": "GET", "path": "/b", "scopes": ["a:read", "b:read"]},
    ],
    "webhooks": {"subscribe_scope": "webhooks:write", "events": [
        {"name": "a.created", "scope": "a:read", "subscription_scopes": ["organization"]}]},
}


def diff(tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Callable[[dict[str, Any]], None],
         *options: str) -> tuple[int, dict[str, Any]]:
    new = copy.deepcopy(BASE)
    change(new)
    for entry in [*new["endpoints"], *new["webhooks"]["events"]]:  # `scopes: None` / `scope: None`: removed
        for key in ("scopes", "scope"):
            if key in entry and entry[key] is None:
                del entry[key]
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(new))
    code = main(["catalog", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"), "--json", *options])
    return code, json.loads(capsys.readouterr().out)


def labels(result: dict[str, Any]) -> dict[str, list[str]]:
    return {f"{c['kind']} {c['item']}": c["labels"] for c in result["changes"]}


def endpoint(catalog: dict[str, Any], key: str) -> dict[str, Any]:
    return next(e for e in catalog["endpoints"] if f"{e['method']} {e['path']}" == key)


def imply(scope: str, *implied: str) -> Callable[[dict[str, Any]], None]:
    def change(catalog: dict[str, Any]) -> None:
        next(s for s in catalog["scopes"] if s["name"] == scope)["implies"] = list(implied)
    return change


CASES: dict[str, tuple[Callable[[dict[str, Any]], None], dict[str, list[str]]]] = {
    "endpoint added": (lambda c: c["endpoints"].append({"method": "DELETE", "path": "/a/{id}", "scopes": ["a:write"]}),
                       {"endpoint DELETE /a/{id}": ["loosens"]}),
    "endpoint removed": (lambda c: c["endpoints"].pop(1), {"endpoint POST /a": ["tightens"]}),
    "scope added to a requirement": (lambda c: endpoint(c, "POST /a")["scopes"].append("a:read"),
                                     {"endpoint POST /a": ["tightens"]}),
    "scope removed from a requirement": (lambda c: endpoint(c, "GET /b")["scopes"].remove("a:read"),
                                         {"endpoint GET /b": ["loosens"]}),
    "scope swapped": (lambda c: endpoint(c, "POST /a").update(scopes=["b:read"]),
                      {"endpoint POST /a": ["loosens", "tightens"]}),
    "implication added": (imply("a:write", "a:read"),
                          {"scope a:write": ["loosens"], "endpoint GET /a/{id}": ["loosens"], "endpoint GET /b": ["loosens"],
                           "event a.created": ["loosens"], "subscription a.created": ["loosens"]}),
    "write implies read switched on": (lambda c: c.update(hierarchy={"write_implies_read": True}),
                                       {"scope a:write": ["loosens"], "endpoint GET /a/{id}": ["loosens"],
                                        "endpoint GET /b": ["loosens"], "event a.created": ["loosens"],
                                        "subscription a.created": ["loosens"]}),
    "cut-over later": (lambda c: c.update(oauth={"scopes_introduced_at": "2026-06-01"}),
                       {"catalog oauth.scopes_introduced_at": ["loosens"]}),
    "cut-over earlier": (lambda c: c.update(oauth={"scopes_introduced_at": "2026-01-01"}),
                         {"catalog oauth.scopes_introduced_at": ["tightens"]}),
    "cut-over removed": (lambda c: c.update(oauth={}), {"catalog oauth.scopes_introduced_at": ["tightens"]}),
    "HEAD no longer GET": (lambda c: c.update(paths={"head_as_get": False}), {"catalog paths.head_as_get": ["tightens"]}),
    "paths in any case": (lambda c: c.update(paths={"case_insensitive": True}),
                          {"catalog paths.case_insensitive": ["loosens"]}),
    "event with alternatives": (lambda c: c["webhooks"]["events"][0].update(scope=None, any_of=[["a:read"], ["b:read"]]),
                                {"event a.created": ["loosens"], "subscription a.created": ["loosens"]}),
    "event scope changed": (lambda c: c["webhooks"]["events"][0].update(scope="b:read"),
                            {"event a.created": ["loosens", "tightens"],
                             "subscription a.created": ["loosens", "tightens"]}),
    "subscription level added": (lambda c: c["webhooks"]["events"][0].update(subscription_scopes=["organization", "user"]),
                                 {"subscription a.created": ["loosens"]}),
    "subscribing needs another scope": (lambda c: c["webhooks"].update(subscribe_scope="b:read"),
                                        {"subscription a.created": ["loosens", "tightens"]}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_change_is_labelled(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    change, expected = CASES[name]
    code, result = diff(tmp_path, capsys, change)
    assert {k: v for k, v in labels(result).items() if v != ["neutral"]} == expected
    assert code == 1 and result["decisions_can_differ"]
    loosens = any("loosens" in v for v in expected.values())
    assert main(["catalog", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"),
                 "--fail-on", "loosens"]) == (1 if loosens else 0)
    capsys.readouterr()


def test_a_witness_token_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, result = diff(tmp_path, capsys, lambda c: endpoint(c, "POST /a").update(scopes=["b:read"]))
    change = next(c for c in result["changes"] if c["item"] == "POST /a")
    assert change["examples"] == ["a token with b:read gains access", "a token with a:write loses access"]


def _textual(catalog: dict[str, Any]) -> None:
    catalog["endpoints"].reverse()
    endpoint(catalog, "GET /b")["scopes"].reverse()
    endpoint(catalog, "GET /a/{id}")["path"] = "/a/{uuid}"
    catalog["scopes"][0]["description"] = "new words"
    catalog["description"] = "another"


def test_textual_changes_change_no_decision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = diff(tmp_path, capsys, _textual)
    assert code == 0 and not result["decisions_can_differ"]
    assert {c["labels"][0] for c in result["changes"]} == {"neutral"}
    assert main(["catalog", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "old.yaml")]) == 0
    assert "no decision can differ" in capsys.readouterr().out


def test_requirements_are_compared_with_implications(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """b:read implies a:read in both: needing [a:read b:read] or [b:read] is the same access."""
    old, new = copy.deepcopy(BASE), copy.deepcopy(BASE)
    imply("b:read", "a:read")(old)
    imply("b:read", "a:read")(new)
    endpoint(new, "GET /b")["scopes"] = ["b:read"]
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(new))
    assert main(["catalog", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml")]) == 0
    assert "no decision can differ" in capsys.readouterr().out
    endpoint(new, "GET /b")["scopes"] = ["a:read"]  # now a:read alone reaches it: looser
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(new))
    assert main(["catalog", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml")]) == 1
    assert "endpoint GET /b: [a:read b:read] -> [a:read]\n                    a token with a:read gains access" \
        in capsys.readouterr().out


def test_invalid_catalog_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text("format: nope\n")
    assert main(["catalog", "diff", str(tmp_path / "bad.yaml"), str(tmp_path / "bad.yaml")]) == 2
    assert "invalid catalog" in capsys.readouterr().err


ANY_OF_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], dict[str, list[str]]]] = {
    "an alternative added": (lambda c: endpoint(c, "POST /a").update(scopes=None, any_of=[["a:write"], ["b:read"]]),
                             {"endpoint POST /a": ["loosens"]}),
    "the same set written as any_of": (lambda c: endpoint(c, "GET /b").update(scopes=None, any_of=[["a:read", "b:read"]]),
                               {}),
    "made public": (lambda c: endpoint(c, "POST /a").update(scopes=None, public=True),
                    {"endpoint POST /a": ["loosens"]}),
    "no scope needed": (lambda c: endpoint(c, "POST /a").update(scopes=[]), {"endpoint POST /a": ["loosens"]}),
    "alternatives narrowed to one": (lambda c: endpoint(c, "GET /a/{id}").update(scopes=["a:read", "a:write"]),
                                     {"endpoint GET /a/{id}": ["tightens"]}),
}


@pytest.mark.parametrize("name", list(ANY_OF_CASES))
def test_alternatives_and_public_endpoints(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    change, expected = ANY_OF_CASES[name]
    code, result = diff(tmp_path, capsys, change)
    assert {k: v for k, v in labels(result).items() if v != ["neutral"]} == expected
    assert code == (1 if expected else 0)


def test_public_and_any_of_both_ways(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """From alternatives to public and back: the witness is 'no token', then a token that loses access."""
    old, new = copy.deepcopy(BASE), copy.deepcopy(BASE)
    endpoint(old, "GET /b").update(any_of=[["a:read"], ["b:read"]])
    del endpoint(old, "GET /b")["scopes"]
    endpoint(new, "GET /b").update(public=True)
    del endpoint(new, "GET /b")["scopes"]
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(new))
    assert main(["catalog", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"), "--json"]) == 1
    change = next(c for c in json.loads(capsys.readouterr().out)["changes"] if c["item"] == "GET /b")
    assert change["labels"] == ["loosens"] and change["examples"] == ["no token gains access"]
    assert main(["catalog", "diff", str(tmp_path / "new.yaml"), str(tmp_path / "old.yaml"), "--json",
                 "--fail-on", "loosens"]) == 0
    change = next(c for c in json.loads(capsys.readouterr().out)["changes"] if c["item"] == "GET /b")
    assert change["labels"] == ["tightens"] and change["what"] == "public (no token) -> [a:read] | [b:read]"
